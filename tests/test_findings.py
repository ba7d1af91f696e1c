"""A study's [finding]: claims judged as paired tests corrected over the finding's claims, against p-values by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fomo_host.errors import FomoError, SpecError
from fomo_host.reporting.findings import MOST_SEEDS, FindingResult, cost_text, judge, one_sided_p, summary_table
from fomo_host.reporting.groups import RunGroup
from fomo_host.reporting.runs import RunResult
from fomo_host.study.file import load_study_file
from fomo_host.study.finding import Finding

REFERENCE = {0: 0.50, 1: 0.60, 2: 0.55}


def group(label: str, offsets: list[float]) -> RunGroup:
    runs = []
    for (seed, base), offset in zip(REFERENCE.items(), offsets, strict=True):
        summary = {"A_ZS": {"final": base + offset}, "GM": {"final": 0.4}}
        runs.append(RunResult(Path(f"/runs/{label}/seed-{seed}"), f"{label} seed {seed}", [], summary, {}, summary))
    return RunGroup(label, runs, len(runs), list(REFERENCE))


def two_sided_p_two_degrees(t: float) -> float:
    # Student's t with 2 degrees of freedom in closed form: P(|T| > t) = 1 - t / sqrt(2 + t^2)
    return 1 - abs(t) / math.sqrt(2 + t * t)


def t_of(differences: list[float]) -> float:
    mean = sum(differences) / len(differences)
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    return mean / (std / math.sqrt(len(differences)))


GROUPS = [group("finetune", [0.0, 0.0, 0.0]), group("lora", [0.03, 0.05, 0.04]), group("bitfit", [0.001, -0.001, 0.0])]


def finding(*claims: dict) -> Finding:
    return Finding.model_validate({"title": "Methods", "paper": "words", "against": "finetune", "claims": list(claims)})


def test_one_sided_p_is_half_the_two_sided_on_its_side():
    assert one_sided_p(6.928, 2) == pytest.approx(two_sided_p_two_degrees(6.928) / 2, rel=1e-6)
    assert one_sided_p(-6.928, 2) == pytest.approx(1 - two_sided_p_two_degrees(6.928) / 2, rel=1e-6)


def test_a_shown_difference_and_an_equivalence_both_hold_after_holm():
    claims = judge(
        finding(
            {"point": "lora", "metric": "A_ZS.final", "direction": "higher"},
            {"point": "bitfit", "metric": "A_ZS.final", "direction": "within", "margin": 0.02},
        ),
        GROUPS,
        "study.toml",
    )
    p_higher = two_sided_p_two_degrees(t_of([0.03, 0.05, 0.04]))  # 0.0202
    se = 0.001 / math.sqrt(3)
    p_within = two_sided_p_two_degrees(0.02 / se) / 2  # both one-sided tests alike: the mean difference is 0
    assert claims[0].p_holds == pytest.approx(p_higher, rel=1e-6)
    assert claims[1].p_holds == pytest.approx(p_within, rel=1e-6)
    # Holm over two: the smaller p doubled, the larger kept (not below the step before it)
    assert claims[1].p_holds_adjusted == pytest.approx(2 * p_within, rel=1e-6)
    assert claims[0].p_holds_adjusted == pytest.approx(p_higher, rel=1e-6)
    assert [claim.state for claim in claims] == ["holds", "holds"]
    result = FindingResult(
        Path("study"), None, "methods", finding({"point": "lora", "metric": "GM.final", "direction": "higher"}), claims, GROUPS, 9, 1.5
    )
    assert result.verdict == "reproduced"


def test_a_difference_shown_the_other_way_contradicts_the_finding():
    spec = finding(
        {"point": "lora", "metric": "A_ZS.final", "direction": "lower"},
        {"point": "bitfit", "metric": "A_ZS.final", "direction": "higher"},
    )
    claims = judge(spec, GROUPS, "study.toml")
    assert claims[0].contradicted and not claims[0].holds
    assert claims[0].p_contradicts_adjusted == pytest.approx(min(1.0, 2 * two_sided_p_two_degrees(t_of([0.03, 0.05, 0.04]))), rel=1e-6)
    assert claims[1].state == "not shown"  # a difference of 0 within noise
    result = FindingResult(Path("study"), None, "methods", spec, claims, GROUPS, 9, 1.5)
    assert result.verdict == "contradicted"
    assert "contradicted" in summary_table(
        [result]
    ) and "lora < finetune on A_ZS.final: +0.040 ± 0.010 (3 seeds) contradicted" in summary_table([result])


def test_a_study_of_reused_runs_counts_their_cost_where_they_ran():
    spec = finding({"point": "lora", "metric": "A_ZS.final", "direction": "lower"})
    claims = judge(spec, GROUPS, "study.toml")
    ran_here = FindingResult(Path("study"), None, "methods", spec, claims, GROUPS, 9, 1.5, reused=3)
    assert cost_text(ran_here) == "9 runs (3 reused from other studies, counted there), seeds 0, 1, 2, 1.50 run-hours"
    all_reused = FindingResult(Path("study"), None, "methods", spec, claims, GROUPS, 9, 0.0, reused=9)
    assert cost_text(all_reused) == "9 runs, all reused from other studies (their run-hours are counted there), seeds 0, 1, 2"
    assert "0.00 run-hours" not in summary_table([all_reused])


def test_an_equivalence_beyond_its_margin_is_contradicted_and_noise_is_not_shown():
    spread = [group("finetune", [0.0, 0.0, 0.0]), group("far", [0.10, 0.11, 0.12]), group("noisy", [0.05, -0.06, 0.0])]
    spec = finding(
        {"point": "far", "metric": "A_ZS.final", "direction": "within", "margin": 0.02},
        {"point": "noisy", "metric": "A_ZS.final", "direction": "within", "margin": 0.02},
    )
    claims = judge(spec, spread, "study.toml")
    assert claims[0].state == "contradicted"
    se = 0.01 / math.sqrt(3)
    assert claims[0].p_contradicts == pytest.approx(two_sided_p_two_degrees((0.11 - 0.02) / se) / 2, rel=1e-6)
    assert claims[1].state == "not shown"
    assert FindingResult(Path("s"), None, "x", spec, claims, spread, 9, 1.0).verdict == "contradicted"


def test_a_claim_not_shown_says_how_many_seeds_would_show_it_at_its_mean_and_spread():
    # differences 0.02, 0.04, 0.00: mean 0.02, std 0.02, so t = sqrt(n) with n seeds; two-sided 5% critical values from
    # the t table: n = 6 gives 2.449 < 2.571 (5 degrees), n = 7 gives 2.646 > 2.447 (6 degrees): 7 seeds
    spread = [group("finetune", [0.0, 0.0, 0.0]), group("near", [0.02, 0.04, 0.0]), group("noisy", [0.05, -0.06, 0.0])]
    [alone] = judge(finding({"point": "near", "metric": "A_ZS.final", "direction": "higher"}), spread, "study.toml")
    assert alone.state == "not shown" and alone.seeds_needed == 7
    assert "7 seeds would show it at this mean and spread" in alone.text()
    # two claims: Bonferroni's 2.5% (critical values 2.841 at 7 degrees, 2.752 at 8): n = 8 gives 2.828, n = 9 gives 3
    pair = judge(
        finding(
            {"point": "near", "metric": "A_ZS.final", "direction": "higher"},
            {"point": "noisy", "metric": "A_ZS.final", "direction": "within", "margin": 0.02},
        ),
        spread,
        "study.toml",
    )
    assert pair[0].seeds_needed == 9
    # an equivalence buried in noise needs more seeds than are worth counting; a mean the other way, none at all
    assert pair[1].state == "not shown" and pair[1].seeds_needed == MOST_SEEDS + 1 and "more than 30 seeds" in pair[1].text()
    [wrong_way] = judge(finding({"point": "near", "metric": "A_ZS.final", "direction": "lower"}), spread, "study.toml")
    assert wrong_way.state == "not shown" and wrong_way.seeds_needed is None and "would show" not in wrong_way.text()


def test_fewer_than_two_seeds_show_nothing():
    one = [RunGroup(g.label, g.runs[:1], 3, [0]) for g in GROUPS]
    claims = judge(finding({"point": "lora", "metric": "A_ZS.final", "direction": "higher"}), one, "study.toml")
    assert claims[0].state == "not shown" and claims[0].p_holds is None
    assert "fewer than 2 paired seeds" in claims[0].text()


def test_a_claim_on_an_unknown_point_or_number_is_refused_in_one_line():
    with pytest.raises(FomoError, match=r"study.toml: the finding's claim names 'dora', not a point of the study \(points: 'finetune'"):
        judge(finding({"point": "dora", "metric": "A_ZS.final", "direction": "higher"}), GROUPS, "study.toml")
    with pytest.raises(FomoError, match=r"summary.json has no 'A_ZS.best' \(stops at 'best'\)"):
        judge(finding({"point": "lora", "metric": "A_ZS.best", "direction": "higher"}), GROUPS, "study.toml")
    with pytest.raises(FomoError, match=r"summary.json's 'A_ZS' is not a number \(dict\)"):
        judge(finding({"point": "lora", "metric": "A_ZS", "direction": "higher"}), GROUPS, "study.toml")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('claims = [{ point = "lora", metric = "GM.final", direction = "within" }]', "direction 'within' needs a margin"),
        (
            'claims = [{ point = "lora", metric = "GM.final", direction = "higher", margin = 0.1 }]',
            "a margin belongs to direction 'within'",
        ),
        ('claims = [{ point = "lora", metric = "GM.final", direction = "better" }]', "finding.claims.0.direction"),
        ("claims = []", "finding.claims"),
    ],
)
def test_a_study_files_finding_is_validated_with_its_key_path(tmp_path, table, message):
    path = tmp_path / "study.toml"
    path.write_text(f'base = "spec.toml"\n[finding]\ntitle = "t"\npaper = "p"\n{table}\n', encoding="utf-8")
    with pytest.raises(SpecError, match=message):
        load_study_file(path)


def test_a_claim_needs_a_reference_other_than_itself(tmp_path):
    path = tmp_path / "study.toml"
    head = 'base = "spec.toml"\n[finding]\ntitle = "t"\npaper = "p"\n'
    claims = 'claims = [{ point = "a", metric = "GM.final", direction = "higher" }]\n'
    path.write_text(head + claims)
    with pytest.raises(SpecError, match="claims.0: no reference point"):
        load_study_file(path)
    path.write_text(head + 'against = "a"\n' + claims)
    with pytest.raises(SpecError, match="'a' is compared with itself"):
        load_study_file(path)


def test_a_claim_naming_no_point_of_the_study_is_refused_before_any_run(small_spec, tmp_path):
    from fomo_host.study.points import plan_study

    small_spec(num_tasks=2, steps=2)
    path = tmp_path / "study.toml"
    path.write_text(
        'base = "spec.toml"\n[grid]\n"optimizer.lr" = [1e-3, 5e-4]\n[finding]\ntitle = "t"\npaper = "p"\nagainst = "lr=0.001"\n'
        'claims = [{ point = "lr=0.0003", metric = "GM.final", direction = "higher" }]\n'
    )
    with pytest.raises(
        SpecError, match=r"finding.claims.0.point: 'lr=0.0003' is not a point of the study \(points: 'lr=0.001', 'lr=0.0005'\)"
    ):
        plan_study(load_study_file(path), path, [], None)
