"""Search studies: Optuna asks for trials, the study's launcher runs them, the sweep tells Optuna how they ended.

A study file with a ``[search]`` table (:mod:`fomo_host.study.space`) is run by the same
``fomo-host sweep``. Each variant (or the study as a whole) is one Optuna study in one
JournalStorage file, ``STUDY_DIR/search/journal.log``; each trial is one ordinary run per
seed, under ``runs/VARIANT/trial-NNN/seed-S``, listed in the study index like a grid
point's runs (``grid`` holds the trial's values, ``trial`` its number). Trials run in
rounds of ``max_parallel`` runs through the launcher; a pruned trial's runs stop after
the task the pruner decided on (:mod:`fomo_host.engine.trial`). ``--resume`` reopens the
journal: finished and pruned trials stay, trials still running when the sweep stopped
are run again under their own number (resuming from their checkpoints), and new trials
are asked for until each variant has ``trials``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..engine.trial import EXIT_PRUNED, TrialReporter, read_pruned
from ..errors import FomoError, SpecError
from ..locking import lock_holder
from ..plugins import PluginHost
from ..progress import Reporter
from ..results import AGGREGATES, SUMMARY_FILE, lookup
from ..run_request import RunRequest
from ..search_journal import build_pruner, journal_storage, quiet_optuna
from ..spec import read_toml
from ..spec_loading import build_spec
from .file import StudyFile, Variant, check_key_path, covers
from .index import LOGS_FOLDER, RUNS_FOLDER, StudyIndex, StudyRun, now, read_index, update_run, write_index
from .points import common_overrides, display_value, override, slug, validate_launcher
from .space import Dimension, SearchTable
from .sweep import FORWARDED_PREFIX, LAUNCHER_FOLDER, STUDY_COPY, SweepEvents

if TYPE_CHECKING:
    from ..components import Launcher

JOURNAL_FOLDER = "search"
JOURNAL_FILE = "journal.log"
WHOLE_STUDY = "search"
"""The Optuna study name (and run folder) of a search without variants."""
SUMMARY_HEADS = (*AGGREGATES, "forgetting", "zero_shot_drop", "backward_transfer", "stability_plasticity", "final_scores", "tasks_done")
TRIAL_GROUP_STRIDE = 100_000
"""Index groups of a search: variant position x this + trial number, so every trial is its own group."""
BUSY_POLL_S = 2.0


def journal_path(study_dir: Path) -> Path:
    return Path(study_dir) / JOURNAL_FOLDER / JOURNAL_FILE


# ----------------------------------------------------------------------------- the plan


@dataclass
class SearchVariant:
    label: str | None
    position: int
    set_overrides: list[str]
    space: dict[str, Dimension]

    @property
    def study_name(self) -> str:
        return self.label if self.label is not None else WHOLE_STUDY

    @property
    def folder(self) -> str:
        return slug(self.study_name)


@dataclass
class SearchPlan:
    study: StudyFile
    table: SearchTable
    study_file: Path
    base: Path
    raw: dict[str, Any]
    spec_sets: list[str]
    common: list[str]
    """Overrides every trial's run starts with: the study's set, --set, and the split the objectives are computed on."""
    variants: list[SearchVariant]
    seeds: list[int]
    host: PluginHost
    launcher_params: BaseModel | None = None

    @property
    def name(self) -> str:
        return self.study.name or self.study_file.stem

    def variant(self, label: str | None) -> SearchVariant:
        return next(variant for variant in self.variants if variant.label == label)


def plan_search(study: StudyFile, study_file: Path, spec_sets: list[str], host: PluginHost) -> SearchPlan:
    """Check the whole search before any trial starts: every key of every space at its bounds (or each choice) against the
    spec and the component's Params, the objectives, the sampler and the pruner."""
    table = study.search
    assert table is not None
    where = f"{study_file}: search"
    base = (study_file.parent / study.base).resolve()
    if not base.is_file():
        raise SpecError(f"{study_file}: base: no such spec file {base}")
    launcher_params = validate_launcher(study, host, study_file)
    labels = [variant.label for variant in study.variants]
    unknown = [label for label in table.spaces if label not in labels]
    if unknown:
        known = ", ".join(labels) or "none: the study has no [[variants]]"
        raise SpecError(f"{where}.spaces.{unknown[0]}: no variant of that label (variants: {known})")
    check_objectives(table, where)
    raw = read_toml(base)
    common = common_overrides(study, spec_sets) + (['evaluation.split="validation"'] if table.split == "validation" else [])
    base_seed = build_spec(raw, common, source=f"{study_file}: base {base.name}").run.seed
    seeds = study.seeds if study.seeds is not None else [base_seed]
    declared: list[Variant | None] = list(study.variants) or [None]
    for variant in declared:
        label = variant.label if variant is not None else None
        own = [override(key, value) for key, value in variant.set.items()] if variant is not None else []
        space = table.space_for(label)
        if not space:
            raise SpecError(f"{where}.space: nothing to search{f' for variant {label!r}' if label else ''}; add keys to [search.space]")
        fixed = [*study.set, *(variant.set if variant is not None else {})]
        for text in spec_sets:
            fixed.append(text.split("=", 1)[0].strip())
        source = f"{where} (variant {label!r})" if label else where
        build_spec(raw, [*common, *own, override("run.seed", seeds[0])], host.registry, source=source)
        for key, dimension in space.items():
            at = f"{where}.space.{key!r}" if key in table.space else f"{where}.spaces.{label}.{key!r}"
            try:
                check_key_path(key)
            except ValueError as exc:
                raise SpecError(f"{at}: {exc}") from None
            clash = next((other for other in fixed if covers(key, other)), None)
            if clash is not None:
                raise SpecError(f"{at}: replaces the study's {clash!r} on every trial; search a key inside it instead")
            for value in dimension.extremes():
                trial = [*common, *own, override(key, value), override("run.seed", seeds[0])]
                build_spec(raw, trial, host.registry, source=f"{at} = {value!r}")
        make_sampler(table, space, where)
    make_pruner(table, where)
    variants = []
    for position, variant in enumerate(declared):
        label = variant.label if variant is not None else None
        own = [override(key, value) for key, value in variant.set.items()] if variant is not None else []
        variants.append(SearchVariant(label, position, own, table.space_for(label)))
    return SearchPlan(study, table, study_file.resolve(), base, raw, list(spec_sets), common, variants, seeds, host, launcher_params)


def check_objectives(table: SearchTable, where: str) -> None:
    for objective in table.parsed_objectives:
        parts = objective.path.split(".")
        if parts[0] not in SUMMARY_HEADS:
            raise SpecError(
                f"{where}.objectives: {objective.text!r}: summary.json has no {parts[0]!r} (paths start with {', '.join(SUMMARY_HEADS)})"
            )
        if parts[0] in AGGREGATES and (len(parts) != 2 or parts[1] not in ("base", "final", "mean", "best", "auc", "change")):
            raise SpecError(f"{where}.objectives: {objective.text!r}: {parts[0]} has base, final, mean, best, auc and change")


def make_sampler(table: SearchTable, space: dict[str, Dimension], where: str = "search", seed: int | None = None) -> Any:
    """The table's Optuna sampler, seeded with ``seed`` (default: the table's own)."""
    import optuna

    seed = table.seed if seed is None else seed

    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
    }
    params = dict(table.sampler_params)
    try:
        if table.sampler == "grid":
            try:
                grid = {key: dimension.grid_values() for key, dimension in space.items()}
            except ValueError as exc:
                raise SpecError(f"{where}.sampler 'grid': {exc}") from None
            return optuna.samplers.GridSampler(grid, seed=seed, **params)
        return classes[table.sampler](seed=seed, **params)
    except TypeError as exc:
        raise SpecError(f"{where}.sampler_params: {exc}") from None


SEQUENCE_SAMPLERS = frozenset({"qmc"})
"""Samplers that draw from one seeded sequence, indexed in the journal: reseeding them per trial would break it."""


def trial_seed(table: SearchTable, label: str | None, number: int) -> int:
    """The sampler's seed for trial ``number`` of a variant: from the search's seed, the variant and the trial number.

    A sampler seeded once per sweep would start its random draws again on ``--resume`` and propose the trials the
    journal already holds (and every variant would draw the same first points); seeded per trial, a resumed search
    proposes what an uninterrupted one would have, and the variants' searches draw apart.
    """
    import hashlib

    digest = hashlib.sha256(f"{table.seed}/{label or ''}/{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def make_pruner(table: SearchTable, where: str = "search") -> Any:
    return build_pruner(table.pruner.name, table.pruner.params, where)


def open_studies(plan: SearchPlan, study_dir: Path) -> dict[str | None, Any]:
    """The Optuna study of every variant, created in the journal or loaded from it."""
    import optuna

    quiet_optuna()
    storage = journal_storage(journal_path(study_dir))
    directions = [objective.direction for objective in plan.table.parsed_objectives]
    return {
        variant.label: optuna.create_study(
            storage=storage,
            study_name=variant.study_name,
            sampler=make_sampler(plan.table, variant.space),
            pruner=make_pruner(plan.table),
            directions=directions,
            load_if_exists=True,
        )
        for variant in plan.variants
    }


# ----------------------------------------------------------------------------- the study directory


def search_record(plan: SearchPlan, sets: Sequence[str], launcher: str | None, created: str | None = None) -> dict[str, Any]:
    table = plan.table
    return {
        "name": plan.name,
        "description": plan.study.description,
        "file": str(plan.study_file),
        "base": str(plan.base),
        "sets": list(sets),
        "common": list(plan.common),
        "launcher": launcher,
        "seeds": list(plan.seeds),
        "created": created or now(),
        "search": {
            "journal": f"{JOURNAL_FOLDER}/{JOURNAL_FILE}",
            "sampler": table.sampler,
            "objectives": list(table.objectives),
            "split": table.split,
            "trials": table.trials,
            "pruner": table.pruner.name,
            "variants": {variant.study_name: {"label": variant.label, "set": variant.set_overrides} for variant in plan.variants},
        },
    }


def is_search_index(index: StudyIndex) -> bool:
    return bool(index.study.get("search"))


def create_search(plan: SearchPlan, study_dir: Path, sets: Sequence[str], launcher: str | None) -> StudyIndex:
    import shutil

    shutil.copyfile(plan.study_file, study_dir / STUDY_COPY)
    index = StudyIndex(study_dir, search_record(plan, sets, launcher), [])
    write_index(index)
    open_studies(plan, study_dir)
    return index


def resume_search(plan: SearchPlan, study_dir: Path, sets: Sequence[str], launcher: str | None, write: bool = True) -> StudyIndex:
    index = read_index(study_dir)
    if not is_search_index(index):
        raise FomoError(f"--resume {study_dir}: a grid study; its study file has no [search] table now, or give that study's file")
    for run in index.runs:
        spec = build_spec(plan.raw, list(run.overrides), plan.host.registry, source=f"{study_dir}: run {run.key}")
        if spec.fingerprint() != run.fingerprint:
            raise FomoError(
                f"--resume {study_dir}: run {run.key} would now get another spec than it started with (the base spec, the study "
                "file or --set changed); restore them, or start a new study"
            )
    index.study = {**search_record(plan, sets, launcher, created=str(index.study.get("created"))), "resumed": now()}
    if write:
        write_index(index)
    return index


# ----------------------------------------------------------------------------- trials


@dataclass
class TrialJob:
    """One trial of one variant, as runs: one per seed."""

    variant: SearchVariant
    number: int
    trial_id: int
    params: dict[str, Any]
    keys: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        shown = ", ".join(f"{key.split('.')[-1]}={display_value(value)}" for key, value in self.params.items())
        return f"{self.variant.label + ' ' if self.variant.label else ''}#{self.number}: {shown}"


def trial_entries(plan: SearchPlan, job: TrialJob) -> list[StudyRun]:
    entries = []
    for seed in plan.seeds:
        key = f"{job.variant.folder}/trial-{job.number:03d}/seed-{seed}"
        overrides = [*plan.common, *job.variant.set_overrides, *(override(k, v) for k, v in job.params.items()), override("run.seed", seed)]
        spec = build_spec(plan.raw, overrides, plan.host.registry, source=f"trial {job.label}")
        entries.append(
            StudyRun(
                key=key,
                run_dir=f"{RUNS_FOLDER}/{key}",
                group=job.variant.position * TRIAL_GROUP_STRIDE + job.number,
                label=job.label,
                variant=job.variant.label,
                grid=dict(job.params),
                seed=seed,
                overrides=overrides,
                fingerprint=spec.fingerprint(),
                trial=job.number,
            )
        )
    return entries


def run_requests(index: StudyIndex, plan: SearchPlan, job: TrialJob, studies_dir: Path) -> list[RunRequest]:
    import os

    study_dir = index.study_dir.resolve()
    env = {key: value for key, value in os.environ.items() if key.startswith(FORWARDED_PREFIX)}
    objective = plan.table.parsed_objectives[0]
    pruning = len(plan.table.objectives) == 1 and plan.table.pruner.name != "none"
    requests = []
    for position, key in enumerate(job.keys):
        run = index.run(key)
        trial_env = dict(env)
        if pruning:
            reporter = TrialReporter(
                journal=str(journal_path(study_dir)),
                study=job.variant.study_name,
                trial_id=job.trial_id,
                number=job.number,
                objective=objective.path,
                split=plan.table.split,
                reports=position == 0,
                marker=str(studies_dir / f"{job.variant.folder}.trial-{job.number:03d}.pruned"),
                pruner=plan.table.pruner.name,
                pruner_params=dict(plan.table.pruner.params),
            )
            trial_env.update(reporter.to_environment())
        requests.append(
            RunRequest(
                key=run.key,
                label=run.label,
                seed=run.seed,
                spec=plan.base,
                overrides=tuple(run.overrides),
                run_dir=study_dir / run.run_dir,
                log=study_dir / LOGS_FOLDER / f"{run.key.replace('/', '.')}.log",
                env=trial_env,
            )
        )
    return requests


class SearchEvents(SweepEvents):
    """The sweep's events, plus the pruned end of a trial's run (its exit status and ``pruned.json``)."""

    def __init__(self, index: StudyIndex, reporter: Reporter, to_run: int, stopping: Any = None) -> None:
        super().__init__(index, reporter, to_run, stopping)
        self.pruned = 0

    def finished(self, request: RunRequest, returncode: int | None, error: str | None = None) -> None:
        reached = read_pruned(request.run_dir)
        if returncode == EXIT_PRUNED and reached is not None:
            update_run(self.study_dir, request.key, status="pruned", tasks_reached=reached, ended=now(), error=None)
            with self._lock:
                self.unreported.discard(request.key)
                self.pruned += 1
                self.tally.pruned += 1
            self.reporter.line(f"{self._progress()} pruned {request.key} after task {reached}")
            return
        super().finished(request, returncode, error)
        summary = request.run_dir / SUMMARY_FILE
        if summary.is_file():
            import json

            tasks = json.loads(summary.read_text(encoding="utf-8")).get("tasks_done")
            update_run(self.study_dir, request.key, tasks_reached=tasks)


def trial_values(index: StudyIndex, plan: SearchPlan, keys: list[str]) -> list[float] | None:
    """The trial's objectives: each the mean over its seeds' summaries (on the search's split)."""
    import json

    values: list[list[float]] = []
    for key in keys:
        summary = json.loads((index.run_path(index.run(key)) / SUMMARY_FILE).read_text(encoding="utf-8"))
        content = summary.get("validation", {}) if plan.table.split == "validation" else summary
        found = [lookup(content, objective.path) for objective in plan.table.parsed_objectives]
        if any(value is None for value in found):
            return None
        values.append([float(value) for value in found if value is not None])
    return [sum(column) / len(column) for column in zip(*values, strict=True)]


@dataclass
class SearchTally:
    complete: int = 0
    pruned: int = 0
    failed: int = 0


def settle_from_files(index: StudyIndex, key: str) -> str | None:
    """The end of a run another process finished (or this sweep's last, killed, life started): from its directory alone."""
    run = index.run(key)
    path = index.run_path(run)
    reached = read_pruned(path)
    if reached is not None:
        update_run(index.study_dir, key, status="pruned", tasks_reached=reached, ended=run.ended or now(), error=None)
        return "pruned"
    if (path / SUMMARY_FILE).is_file():
        import json

        tasks = json.loads((path / SUMMARY_FILE).read_text(encoding="utf-8")).get("tasks_done")
        update_run(index.study_dir, key, status="finished", tasks_reached=tasks, ended=run.ended or now(), error=None)
        return "finished"
    return None


def run_search(
    plan: SearchPlan, index: StudyIndex, launcher: Launcher, launcher_name: str, reporter: Reporter, stopping: Any, parallel: int
) -> SearchTally:
    """Ask, run and tell until every variant has its trials; trials a killed sweep left running are finished first."""
    from optuna.trial import TrialState

    studies = open_studies(plan, index.study_dir)
    markers = index.study_dir.resolve() / JOURNAL_FOLDER
    leftovers: list[TrialJob] = []
    for variant in plan.variants:
        for frozen in studies[variant.label].get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            job = TrialJob(variant, frozen.number, frozen._trial_id, dict(frozen.params))
            leftovers.append(job)
    counts = {label: len(study.trials) for label, study in studies.items()}
    done = {label: sum(1 for t in study.trials if t.state.is_finished()) for label, study in studies.items()}
    objectives = ", ".join(plan.table.objectives)
    reporter.line(
        f"search {index.study_dir}: {len(plan.variants)} variant(s) x {plan.table.trials} trials x {len(plan.seeds)} seed(s), "
        f"{sum(done.values())} trials done, {len(leftovers)} to resume; sampler {plan.table.sampler}, pruner {plan.table.pruner.name}, "
        f"objective{'s' if len(plan.table.objectives) > 1 else ''} {objectives} on the {plan.table.split} split; "
        f"launcher {launcher_name}" + (f": {launcher.describe()}" if launcher.describe() else "") + f"; {parallel} runs at a time"
    )
    tally = SearchTally()
    while True:
        jobs = next_round(plan, studies, counts, leftovers, parallel)
        if not jobs:
            break
        _run_round(plan, index, launcher, reporter, stopping, jobs, markers)
        current = read_index(index.study_dir)
        for job in jobs:
            statuses = [current.run(key).status for key in job.keys]
            study = studies[job.variant.label]
            if "interrupted" in statuses:
                continue  # the sweep was stopped: the trial stays running in the journal, and --resume runs it again
            if "pruned" in statuses:
                study.tell(job.number, state=TrialState.PRUNED)
                tally.pruned += 1
                reporter.line(f"trial {job.label}: pruned")
            elif all(status == "finished" for status in statuses) and (values := trial_values(current, plan, job.keys)) is not None:
                study.tell(job.number, values if len(values) > 1 else values[0])
                tally.complete += 1
                shown = ", ".join(f"{objective} {value:.4f}" for objective, value in zip(plan.table.objectives, values, strict=True))
                reporter.line(f"trial {job.label}: {shown}")
            else:
                study.tell(job.number, state=TrialState.FAIL)
                tally.failed += 1
                reporter.line(f"trial {job.label}: failed ({', '.join(statuses)})")
    return tally


def next_round(
    plan: SearchPlan, studies: dict[str | None, Any], counts: dict[str | None, int], leftovers: list[TrialJob], parallel: int
) -> list[TrialJob]:
    """The next round's trials: trials a stopped sweep left running first, then new ones asked of each variant in turn.

    A round holds the launcher's ``parallel`` runs, and one new trial of every variant at least: each variant's
    sampler still learns from all earlier trials of its own before it asks again, while the launcher keeps its slots
    busy across variants whose runs differ in length (rounds of ``parallel`` trials would idle a slot until the
    round's longest run ended). ``counts`` (trials asked per variant) and ``leftovers`` are updated in place.
    """
    per_trial = len(plan.seeds)
    capacity = max(parallel, per_trial * len(plan.variants))
    jobs: list[TrialJob] = []
    while leftovers and (len(jobs) + 1) * per_trial <= capacity:
        jobs.append(leftovers.pop(0))
    asking = True
    while asking and (len(jobs) + 1) * per_trial <= capacity:
        asking = False
        for variant in plan.variants:
            if counts[variant.label] >= plan.table.trials or (len(jobs) + 1) * per_trial > capacity:
                continue
            study = studies[variant.label]
            if plan.table.sampler not in SEQUENCE_SAMPLERS:
                study.sampler = make_sampler(plan.table, variant.space, seed=trial_seed(plan.table, variant.label, counts[variant.label]))
            trial = study.ask()
            params = {key: dimension.suggest(trial, key) for key, dimension in variant.space.items()}
            jobs.append(TrialJob(variant, trial.number, trial._trial_id, params))
            counts[variant.label] += 1
            asking = True
    return jobs


def _run_round(
    plan: SearchPlan, index: StudyIndex, launcher: Launcher, reporter: Reporter, stopping: Any, jobs: list[TrialJob], markers: Path
) -> None:
    """Add the round's trials to the index, wait for any of their runs another process still holds, and launch the rest."""
    current = read_index(index.study_dir)
    known = {run.key for run in current.runs}
    added = False
    for job in jobs:
        entries = trial_entries(plan, job)
        job.keys = [entry.key for entry in entries]
        for entry in entries:
            if entry.key not in known:
                current.runs.append(entry)
                added = True
    if added:
        write_index(current)
    requests: list[RunRequest] = []
    for job in jobs:
        requests += run_requests(current, plan, job, markers)
    requests = longest_first(current, requests)
    wait_for_others(current, requests, reporter)
    to_launch = [request for request in requests if settle_from_files(current, request.key) is None]
    for _attempt in range(2):
        if not to_launch:
            return
        _launch(index, launcher, reporter, stopping, current, to_launch)
        # a run a killed sweep had just started may lock its directory only after this sweep looked: the second start
        # then fails as "in use"; wait for the first one and take its end instead
        after = read_index(index.study_dir)
        clashed = [
            r
            for r in to_launch
            if after.run(r.key).status == "failed" and "in use by another fomo-host run" in (after.run(r.key).error or "")
        ]
        if not clashed:
            return
        wait_for_others(after, clashed, reporter)
        to_launch = [request for request in clashed if settle_from_files(after, request.key) is None]


def longest_first(index: StudyIndex, requests: list[RunRequest]) -> list[RunRequest]:
    """The round's runs, those of the variants whose finished runs took longest first; those of variants with no
    finished run yet after them, in their order.

    The launcher starts them in this order as its slots free up, so a round's long runs (BitFit takes twice as long
    as fine-tuning for the same MAF) do not start last and hold the round open while the other slots wait.
    """
    from datetime import datetime

    took: dict[str, list[float]] = {}
    for run in index.runs:
        if run.status == "finished" and run.started and run.ended:
            seconds = (datetime.fromisoformat(run.ended) - datetime.fromisoformat(run.started)).total_seconds()
            took.setdefault(run.key.split("/")[0], []).append(seconds)
    expected = {folder: sum(values) / len(values) for folder, values in took.items()}
    return sorted(requests, key=lambda request: -expected.get(request.key.split("/")[0], 0.0))


def wait_for_others(index: StudyIndex, requests: list[RunRequest], reporter: Reporter) -> None:
    """Wait for runs another process holds (their directory locked), or that a stopped sweep started on this machine
    and that are still starting (their process alive, their directory not locked yet)."""
    waited = set()
    while True:
        busy = {}
        for request in requests:
            holder = lock_holder(request.run_dir) or starting_process(index.run(request.key))
            if holder is not None:
                busy[request.key] = holder
        if not busy:
            return
        for key, holder in busy.items():
            if key not in waited:
                waited.add(key)
                reporter.line(f"waiting for {key}: still running in another process ({holder})")
        time.sleep(BUSY_POLL_S)


def starting_process(run: StudyRun) -> str | None:
    """``pid N`` of a run the local launcher started (its job) while that process lives, else None."""
    import os

    if run.status != "running" or not (run.job or "").startswith("pid "):
        return None
    try:
        pid = int((run.job or "").split()[1].rstrip(","))
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return None
    state = Path(f"/proc/{pid}/stat")
    if state.is_file() and state.read_text().split(")")[-1].split()[0] == "Z":
        return None  # ended, not yet reaped
    return f"pid {pid}"


def _launch(
    index: StudyIndex, launcher: Launcher, reporter: Reporter, stopping: Any, current: StudyIndex, to_launch: list[RunRequest]
) -> None:
    (index.study_dir.resolve() / LAUNCHER_FOLDER).mkdir(parents=True, exist_ok=True)
    events = SearchEvents(current, reporter, len(to_launch), stopping)
    events.unreported = {request.key for request in to_launch}
    try:
        launcher.launch(to_launch, events, index.study_dir.resolve() / LAUNCHER_FOLDER)
    except KeyboardInterrupt:
        events.stopping.set()
        for key in sorted(events.unreported & set(events._started_at)):
            update_run(index.study_dir, key, status="interrupted", ended=now())
        raise
    for key in sorted(events.unreported):
        update_run(index.study_dir, key, status="failed", ended=now(), error="the launcher returned without reporting this run's end")


def round_size(plan: SearchPlan, launcher: Launcher) -> int:
    """Runs started together: the launcher's own max_parallel where it has one, else its params', else 1."""
    value = getattr(launcher, "max_parallel", None)
    if not isinstance(value, int):
        params = plan.launcher_params
        value = getattr(params, "max_parallel", None) if params is not None else None
    return value if isinstance(value, int) and value >= 1 else 1
