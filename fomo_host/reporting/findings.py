"""Judging a study's ``[finding]`` from its finished runs: each claim a paired test, corrected over the finding's claims.

A claim compares ``point`` with its reference seed by seed on one number of each run's summary. ``higher`` and
``lower`` use the paired t-test that ``fomo-host compare --against`` uses (two-sided, 5%): the claim *holds* where
the difference is shown in its direction and is *contradicted* where it is shown the other way. ``within`` is an
equivalence claim, judged by two one-sided tests (TOST, 5% each): it holds where the difference is shown to lie
inside ``± margin``, and is contradicted where it is shown to lie outside. Each list of p-values (holding,
contradicting) is corrected over the finding's claims with the finding's correction (Holm by default).
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..spec import read_toml
from ..study.finding import Claim, Finding
from ..study.index import StudyIndex, read_index
from .groups import SIGNIFICANCE, Difference, RunGroup, adjust_p_values, study_groups, t_test_p
from .runs import RunResult

VERDICTS = ("reproduced", "not shown", "contradicted")
MOST_SEEDS = 30
"""The most seeds :func:`seeds_to_show` looks at; beyond it a claim is out of reach of seeds alone."""


def one_sided_p(t: float, degrees: int) -> float:
    """P(T >= t) for Student's t with ``degrees`` degrees of freedom."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    half = t_test_p(t, degrees) / 2.0
    return half if t >= 0 else 1.0 - half


def summary_number(run: RunResult, metric: str) -> float:
    """A number of the run's ``summary.json`` by its dotted path (refused in one line where there is none)."""
    node: Any = run.written_summary or run.summary
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FomoError(f"{run.run_dir}: summary.json has no {metric!r} (stops at {part!r})")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise FomoError(f"{run.run_dir}: summary.json's {metric!r} is not a number ({type(node).__name__})")
    return float(node)


@dataclass
class ClaimResult:
    """One claim judged: the paired difference, its tests' p-values (raw and corrected over the finding's claims)."""

    claim: Claim
    against: str
    difference: Difference
    p_holds: float | None = None
    p_contradicts: float | None = None
    p_holds_adjusted: float | None = None
    p_contradicts_adjusted: float | None = None
    seeds_needed: int | None = None
    """For a claim not shown whose mean lies its way: the seeds that would show it at the mean and spread seen
    (a planning figure, see :func:`seeds_to_show`); ``MOST_SEEDS + 1`` where more than ``MOST_SEEDS`` would."""

    @property
    def holds(self) -> bool:
        return self.p_holds_adjusted is not None and self.p_holds_adjusted < SIGNIFICANCE

    @property
    def contradicted(self) -> bool:
        return self.p_contradicts_adjusted is not None and self.p_contradicts_adjusted < SIGNIFICANCE

    @property
    def state(self) -> str:
        return "holds" if self.holds else "contradicted" if self.contradicted else "not shown"

    def text(self) -> str:
        """``lora - finetune A_ZS.final +0.012 ± 0.010 (3 seeds): holds, p 0.012``."""
        d = self.difference
        shown = "-" if d.n == 0 else f"{d.mean:+.3f}" + (f" ± {d.std:.3f}" if d.std is not None else "")
        # the p that decided the state: the holding test's where it holds, the contradicting one's where it is
        # contradicted, and the smaller of the two where neither is shown
        tested = [p for p in (self.p_holds_adjusted, self.p_contradicts_adjusted) if p is not None]
        p = self.p_holds_adjusted if self.holds else self.p_contradicts_adjusted if self.contradicted else min(tested, default=None)
        tail = f", p {p:.3g}" if p is not None else ", fewer than 2 paired seeds"
        if self.seeds_needed is not None:
            needed = f"more than {MOST_SEEDS}" if self.seeds_needed > MOST_SEEDS else f"{self.seeds_needed}"
            tail += f"; {needed} seeds would show it at this mean and spread"
        expected = "≈" if self.claim.direction == "within" else ">" if self.claim.direction == "higher" else "<"
        margin = f" ±{self.claim.margin:g}" if self.claim.margin is not None else ""
        return (
            f"{self.claim.point} {expected} {self.against}{margin} on {self.claim.metric}: "
            f"{shown} ({d.n} seed{'s' if d.n != 1 else ''}) {self.state}{tail}"
        )


@dataclass
class FindingResult:
    """A study's finding judged: its claims, the verdict, and what it took (runs, seeds, run-hours)."""

    study_dir: Path
    study_file: Path | None
    name: str
    finding: Finding
    claims: list[ClaimResult]
    groups: list[RunGroup]
    runs: int
    run_hours: float
    reused: int = 0
    """Of ``runs``, those copied from another study's finished runs (``sweep --reuse``)."""
    planned: int = 0
    """Runs the study plans; more than ``runs`` where it is judged on what has finished (``--partial``)."""
    figure: str | None = None
    """The file name of its figure on a findings page (set by :func:`write_page`)."""

    @property
    def held(self) -> int:
        """How many of its claims hold."""
        return sum(1 for claim in self.claims if claim.holds)

    @property
    def verdict(self) -> str:
        if any(claim.contradicted for claim in self.claims):
            return "contradicted"
        if all(claim.holds for claim in self.claims):
            return "reproduced"
        return "not shown"

    @property
    def seeds(self) -> list[int]:
        return sorted({seed for group in self.groups for seed in group.seeds})


def judge_claim(claim: Claim, against: str, point: RunGroup, reference: RunGroup) -> ClaimResult:
    """The claim's paired difference and the raw p-values of its two tests (holding, contradicting)."""
    values, base = (
        point.by_seed(lambda run: summary_number(run, claim.metric)),
        reference.by_seed(lambda run: summary_number(run, claim.metric)),
    )
    difference = Difference.paired(values, base)
    result = ClaimResult(claim, against, difference)
    if difference.n < 2 or difference.std is None:
        return result
    if claim.direction == "within":
        margin = float(claim.margin or 0.0)
        degrees = difference.n - 1
        error = difference.std / math.sqrt(difference.n)
        if error == 0.0:
            inside = abs(difference.mean) < margin
            result.p_holds, result.p_contradicts = (0.0, 1.0) if inside else (1.0, 0.0 if abs(difference.mean) > margin else 1.0)
            return result
        above_lower = one_sided_p((difference.mean + margin) / error, degrees)  # mean > -margin
        below_upper = one_sided_p((margin - difference.mean) / error, degrees)  # mean < +margin
        result.p_holds = max(above_lower, below_upper)
        # shown outside: beyond +margin, or below -margin, whichever side the mean lies on
        result.p_contradicts = min(
            one_sided_p((difference.mean - margin) / error, degrees), one_sided_p((-margin - difference.mean) / error, degrees)
        )
        return result
    p = difference.p if difference.p is not None else 1.0
    right_way = difference.mean > 0 if claim.direction == "higher" else difference.mean < 0
    wrong_way = difference.mean < 0 if claim.direction == "higher" else difference.mean > 0
    result.p_holds = p if right_way else 1.0
    result.p_contradicts = p if wrong_way else 1.0
    return result


def seeds_to_show(claim: Claim, difference: Difference, tests: int) -> int | None:
    """The fewest seeds with which the claim's test would hold were its paired differences' mean and spread what they
    are now, its p-value corrected as Bonferroni would over the finding's ``tests`` claims (Holm's most strict step).

    A plug-in estimate for planning (it takes the seen mean for the true one, so such a rerun shows the claim about half
    the time); None where there is no spread to go by, or the mean lies the other way (more seeds would not help).
    """
    if difference.n < 2 or not difference.std:
        return None
    mean, std = difference.mean, difference.std
    if claim.direction == "within":
        margin = float(claim.margin or 0.0)
        if abs(mean) >= margin:
            return None
    elif (mean > 0) != (claim.direction == "higher") or mean == 0.0:
        return None
    for seeds in range(difference.n + 1, MOST_SEEDS + 1):
        error = std / math.sqrt(seeds)
        if claim.direction == "within":
            p = max(one_sided_p((mean + margin) / error, seeds - 1), one_sided_p((margin - mean) / error, seeds - 1))
        else:
            p = t_test_p(mean / error, seeds - 1)
        if p * tests < SIGNIFICANCE:
            return seeds
    return MOST_SEEDS + 1


def judge(finding: Finding, groups: list[RunGroup], where: str) -> list[ClaimResult]:
    by_label = {group.label: group for group in groups}
    results = []
    for claim in finding.claims:
        against = finding.reference(claim)
        for label in (claim.point, against):
            if label not in by_label:
                points = ", ".join(repr(group.label) for group in groups)
                raise FomoError(f"{where}: the finding's claim names {label!r}, not a point of the study (points: {points})")
        results.append(judge_claim(claim, against, by_label[claim.point], by_label[against]))
    for field in ("p_holds", "p_contradicts"):
        tested = [result for result in results if getattr(result, field) is not None]
        adjusted = adjust_p_values([getattr(result, field) for result in tested], finding.correction)
        for result, value in zip(tested, adjusted, strict=True):
            setattr(result, f"{field}_adjusted", value)
    for result in results:
        if result.state == "not shown":
            result.seeds_needed = seeds_to_show(result.claim, result.difference, len(results))
    return results


def study_finding(index: StudyIndex) -> tuple[Finding, Path]:
    """The study's ``[finding]``: from the study file the study was made from, else from its copy in the study directory."""
    from pydantic import ValidationError

    from ..study.file import format_study_error
    from ..study.sweep import STUDY_COPY

    recorded = Path(str(index.study["file"])) if index.study.get("file") else None
    candidates = [path for path in (recorded, index.study_dir / STUDY_COPY) if path is not None and path.is_file()]
    for path in candidates:
        table = read_toml(path).get("finding")
        if table is None:
            continue
        try:
            return Finding.model_validate(table), path
        except ValidationError as exc:
            raise FomoError(f"{path}: finding: {format_study_error(exc)}") from None
    shown = " or ".join(str(path) for path in candidates) or "its study file"
    raise FomoError(f"{index.study_dir}: {shown} has no [finding] table; add one (docs/studies.md, 'What a study shows')")


def run_hours(index: StudyIndex) -> float:
    """Wall-clock hours of the runs this study ran to the end (each from its start to its end, as the index records
    them); runs copied from another study (``sweep --reuse``) cost it nothing."""
    total = 0.0
    for run in index.runs:
        if run.status == "finished" and run.started and run.ended and not run.reused_from:
            total += (datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)).total_seconds()
    return total / 3600.0


def load_finding(study_dir: Path, partial: bool = False) -> FindingResult:
    """The study's finding judged; a point a claim names with runs not finished is refused unless ``partial``."""
    index = read_index(study_dir)
    if index.study.get("search"):
        raise FomoError(f"{study_dir}: a search study; a finding is judged on a grid study's points (sweep --confirm makes one)")
    finding, source = study_finding(index)
    groups = study_groups(index)
    named = {label for claim in finding.claims for label in (claim.point, finding.reference(claim))}
    unfinished = [group for group in groups if group.label in named and len(group.runs) < group.planned]
    if unfinished and not partial:
        shown = ", ".join(f"{group.label!r} {len(group.runs)} of {group.planned}" for group in unfinished)
        raise FomoError(
            f"{study_dir}: runs not finished ({shown}); finish the study (fomo-host sweep --resume {study_dir}), or judge the "
            "finished seeds with --partial"
        )
    claims = judge(finding, groups, str(source))
    name = str(index.study.get("name") or study_dir.name)
    finished = [run for run in index.runs if run.status == "finished"]
    study_file = Path(str(index.study["file"])) if index.study.get("file") else None
    reused = sum(1 for run in finished if run.reused_from)
    planned = sum(group.planned for group in groups)
    return FindingResult(study_dir, study_file, name, finding, claims, groups, len(finished), run_hours(index), reused, planned)


def draw_finding(result: FindingResult, path: Path) -> None:
    """The study's points on the A_KA-A_ZS plane: each point's mean trajectory over its seeds, ± one standard deviation."""
    from .plots import draw_plane

    finished = [group for group in result.groups if group.runs]
    draw_plane([group.mean_run() for group in finished], path, {group.label: group.spread() for group in finished})


# ----------------------------------------------------------------------------- the page

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}
METHOD = (
    "Each claim compares two points of a study seed by seed (same seed: same base model and data order): a paired "
    "t-test, two-sided at 5%, for `higher` and `lower`; two one-sided tests at the margin (TOST, 5% each) for `within`. "
    "The p-values are corrected over the finding's claims (the correction is named in each row). A finding is "
    "**reproduced** where every claim holds, **contradicted** where any claim is shown the other way, and **not shown** "
    "otherwise."
)


def shown_path(path: Path | str) -> str:
    """A path as a reader can type it: relative to the working directory where it lies below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def sweep_command(result: FindingResult) -> str:
    study_file = shown_path(result.study_file) if result.study_file is not None else "STUDY.toml"
    return f"fomo-host sweep {study_file} --output {shown_path(result.study_dir)}"


def verdict_text(result: FindingResult) -> str:
    return f"**{result.verdict}** ({result.held} of {len(result.claims)} claims hold)"


def cost_text(result: FindingResult) -> str:
    seeds = ", ".join(str(seed) for seed in result.seeds)
    partial = f" of {result.planned} planned (partial)" if result.planned > result.runs else ""
    if result.reused and result.reused == result.runs:  # nothing ran here: its cost is counted where the runs ran
        return f"{result.runs} runs{partial}, all reused from other studies (their run-hours are counted there), seeds {seeds}"
    reused = f" ({result.reused} reused from other studies, counted there)" if result.reused else ""
    return f"{result.runs} runs{partial}{reused}, seeds {seeds}, {result.run_hours:.2f} run-hours"


def summary_table(results: list[FindingResult], sections: bool = False) -> str:
    """One row per finding: the paper's claim, the verdict, each claim judged, what it cost, the command that made it."""
    from .tables import markdown_table

    rows = []
    for result in results:
        title = result.finding.title
        if sections:  # the page has a section per finding: the title links to it
            title = f"[{title}](#{anchor(result.finding.title)})"
        claims = "<br>".join(claim.text() for claim in result.claims)
        correction = f"{CORRECTION_NAMES[result.finding.correction]} over {len(result.claims)}"
        rows.append(
            [
                title,
                result.finding.paper,
                verdict_text(result),
                f"{claims}<br>({correction})",
                cost_text(result),
                f"`{sweep_command(result)}`",
            ]
        )
    return markdown_table(["finding", "the paper", "verdict", "claims", "runs", "made by"], rows, left={0, 1, 2, 3, 4, 5})


def brief_table(results: list[FindingResult], page: Path) -> str:
    """One row per finding for a README: the verdict (saying so where judged on part of its runs), the figure and the
    command, each finding linked to its section of ``page`` (written by :func:`write_page`, which names the figures);
    links are relative to the working directory."""
    from .tables import markdown_table

    where = shown_path(page.parent)
    rows = []
    for result in results:
        rows.append(
            [
                f"[{result.finding.title}]({where}/{page.name}#{anchor(result.finding.title)})",
                f"**{result.verdict}**" + (f", partial: {result.runs} of {result.planned} runs" if result.planned > result.runs else ""),
                f"{result.held} of {len(result.claims)}",
                f"[{result.figure}]({where}/{result.figure})",
                f"`{sweep_command(result)}`",
            ]
        )
    return markdown_table(["finding", "verdict", "claims held", "figure", "made by"], rows, left={0, 1, 2, 3, 4})


def anchor(title: str) -> str:
    """The heading anchor MkDocs gives a title."""
    kept = "".join(character for character in title.lower() if character.isalnum() or character in " -_")
    return "-".join(kept.split())


def study_tables(result: FindingResult) -> str:
    """The study's points (``compare --markdown``) and, with the finding's reference, each point against it (``--against``)."""
    from .tables import (
        DIFFERENCE_COLUMNS,
        GROUP_COLUMNS,
        count_tests,
        difference_rows,
        format_difference,
        format_stat,
        group_rows,
        markdown_table,
    )

    directory = shown_path(result.study_dir)
    rows = group_rows(result.groups)
    points = markdown_table(
        [heading for _, heading, _ in GROUP_COLUMNS],
        [[format_stat(row[key], style) for key, _, style in GROUP_COLUMNS] for row in rows],
        left={1},
    )
    text = f"`fomo-host compare {directory} --markdown` (mean ± standard deviation over seeds):\n\n{points}\n"
    against = result.finding.against
    if against is not None:
        differences = difference_rows(result.groups, against)
        heading = f"point (* Holm-corrected over {count_tests(differences)} comparisons, p < 0.05)"
        columns = [("point", heading, "s"), *DIFFERENCE_COLUMNS[1:]]
        table = markdown_table(
            [title for _, title, _ in columns],
            [[format_difference(row[key], style) for key, _, style in columns] for row in differences],
            left={0},
        )
        text += f"\n`fomo-host compare {directory} --against {shlex.quote(against)} --markdown`:\n\n{table}\n"
    return text


def write_page(results: list[FindingResult], out: Path, command: str) -> Path:
    """``out/findings.md`` (the table, then a section per finding with its figure and the study's tables) and a figure per study."""
    from ..version import __version__

    out.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    for position, result in enumerate(results):
        # two studies of one name (the same study file run twice) get a figure each
        figure = f"{result.name}.png" if result.name not in names else f"{result.name}-{position + 1}.png"
        names.add(result.name)
        draw_finding(result, out / figure)
        result.figure = figure
    lines = [
        "# Findings",
        "",
        f"Generated by `{command}` (fomo-host {__version__}) from {len(results)} "
        f"stud{'ies' if len(results) != 1 else 'y'}; every number below is the tool's output, and the command that made "
        "each study and each table stands beside it. " + METHOD,
        "",
        summary_table(results, sections=True),
    ]
    for result in results:
        lines += [
            "",
            f"## {result.finding.title}",
            "",
            f"**The paper:** {result.finding.paper}",
            "",
            f"**Verdict:** {verdict_text(result)}; {cost_text(result)}; made by `{sweep_command(result)}`.",
            "",
            *(f"- {claim.text()}" for claim in result.claims),
            "",
            f"![{result.finding.title}: each point's mean path on the A_KA-A_ZS plane, ± one standard deviation over seeds]"
            f"({result.figure})",
            "",
            study_tables(result),
        ]
    page = out / "findings.md"
    temporary = page.with_suffix(".md.tmp")
    temporary.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    os.replace(temporary, page)
    return page
