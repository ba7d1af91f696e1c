"""The ``[search]`` table: every mistake refused in one line before any trial starts, with the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.errors import SpecError
from fomo_host.plugins import load_plugins
from fomo_host.results import lookup
from fomo_host.study.file import load_study_file
from fomo_host.study.search import next_round, open_studies, plan_search

VARIANTS = """
[[variants]]
label = "lora"
set = { "method" = { name = "lora" } }
[[variants]]
label = "finetune"
set = { "method" = { name = "finetune" } }
"""


@pytest.fixture(scope="module")
def host():
    return load_plugins()


@pytest.fixture
def write(small_spec, tmp_path):
    def make(search: str, space: str = LR, extra: str = "") -> Path:
        small_spec(num_tasks=2, steps=2)
        path = tmp_path / "study.toml"
        path.write_text(f'base = "spec.toml"\n{extra}\n[search]\n{search}\n[search.space]\n{space}\n', encoding="utf-8")
        return path

    return make


def check(path: Path, host) -> None:
    plan_search(load_study_file(path), path, [], host)


GOOD = 'objectives = ["A_KA.final:max"]\ntrials = 4'
LR = '"optimizer.lr" = { log_uniform = [1e-5, 1e-2] }'


def test_a_valid_search_plans_one_study_per_variant(write, host):
    path = write(GOOD, extra=VARIANTS + '\n[search.spaces.lora]\n"method.params.rank" = { choice = [4, 8] }')
    plan = plan_search(load_study_file(path), path, [], host)
    assert [variant.label for variant in plan.variants] == ["lora", "finetune"]
    assert set(plan.variants[0].space) == {"optimizer.lr", "method.params.rank"} and set(plan.variants[1].space) == {"optimizer.lr"}
    assert 'evaluation.split="validation"' in plan.common


@pytest.mark.parametrize(
    ("parallel", "expected"), [(1, ["lora", "finetune"]), (2, ["lora", "finetune"]), (3, ["lora", "finetune", "lora"])]
)
def test_a_round_asks_every_variant_before_any_asks_again(write, host, tmp_path, parallel, expected):
    # runs of different variants differ in length (LoRA takes more steps than fine-tuning for the same MAF): a round
    # of one trial per variant keeps the launcher's slots busy, and each variant's sampler still asks one at a time
    path = write(GOOD, extra=VARIANTS)
    plan = plan_search(load_study_file(path), path, [], host)
    studies = open_studies(plan, tmp_path)
    counts = {variant.label: 0 for variant in plan.variants}
    first = next_round(plan, studies, counts, [], parallel)
    assert [job.variant.label for job in first] == expected
    assert [job.number for job in first if job.variant.label == "lora"] == list(range(expected.count("lora")))
    while next_round(plan, studies, counts, [], parallel):
        pass
    assert counts == {"lora": 4, "finetune": 4}  # never more than the search's trials


def test_a_resumed_search_proposes_what_an_uninterrupted_one_would_and_never_repeats_a_trial(write, host, tmp_path):
    # a sampler seeded once per sweep would restart its draws on --resume and propose trial 0's params again
    path = write(GOOD, extra=VARIANTS)
    plan = plan_search(load_study_file(path), path, [], host)

    def proposals(study_dir: Path, resume_after: int | None) -> dict:
        studies = open_studies(plan, study_dir)
        counts = {variant.label: 0 for variant in plan.variants}
        asked = []
        for round_number in range(3):
            if round_number == resume_after:
                studies = open_studies(plan, study_dir)  # a new sweep process on the same journal
            asked += next_round(plan, studies, counts, [], 1)
        return {(job.variant.label, job.number): job.params["optimizer.lr"] for job in asked}

    uninterrupted = proposals(tmp_path / "a", None)
    assert proposals(tmp_path / "b", 1) == uninterrupted
    for label in ("lora", "finetune"):
        assert len({uninterrupted[(label, number)] for number in range(3)}) == 3
    assert uninterrupted[("lora", 0)] != uninterrupted[("finetune", 0)]  # the variants' searches draw apart


@pytest.mark.parametrize(
    ("search", "space", "extra", "message"),
    [
        (GOOD, '"optimizer.lrr" = { uniform = [0.1, 0.2] }', "", "search.space.'optimizer.lrr' = 0.1: optimizer.lrr: unknown key"),
        (GOOD, '"optimizer.lr" = { uniform = [-1.0, 0.1] }', "", "'optimizer.lr' = -1.0: optimizer.lr: Input should be greater than 0"),
        (GOOD, '"optimizer.lr" = { uniform = [0.1, 0.01] }', "", "must be below the high bound"),
        (GOOD, '"optimizer.lr" = { uniform = [0.0, 0.1], log = true }', "", "a log scale needs a low bound above 0"),
        (GOOD, '"optimizer.lr" = { uniform = [0.1, 0.2], choice = [1] }', "", "give exactly one of"),
        (GOOD, '"run.seed" = { int = [0, 3] }', "", "use the study's seeds"),
        (GOOD, '"method" = { choice = ["lora"] }', VARIANTS, "replaces the study's 'method' on every trial"),
        (
            GOOD,
            LR,
            VARIANTS + '\n[search.spaces.lora]\n"method.params.rank" = { int = [0, 8] }',
            "search.spaces.lora.'method.params.rank' = 0: method.params.rank",
        ),
        (GOOD, LR, VARIANTS + '\n[search.spaces.lroa]\n"x.y" = { int = [1, 2] }', "spaces.lroa"),
        ('objectives = ["A_KA.last:max"]\ntrials = 4', LR, "", "A_KA has base, final"),
        ('objectives = ["A_KA.final:up"]\ntrials = 4', LR, "", "write PATH:max or PATH:min"),
        ('objectives = ["accuracy:max"]\ntrials = 4', LR, "", "summary.json has no 'accuracy'"),
        (
            'objectives = ["A_KA.final:max", "A_ZS.final:max"]\ntrials = 4\npruner = { name = "median" }',
            LR,
            "",
            "Optuna cannot prune a study with several objectives",
        ),
        (GOOD + '\nsampler = "cmaes2"', LR, "", "unknown sampler 'cmaes2'"),
        (GOOD + '\npruner = { name = "median", params = { warmup = 3 } }', LR, "", "pruner.params"),
        (GOOD + '\nsampler = "grid"', LR, "", "the grid sampler needs choice"),
        (GOOD, LR, '[grid]\n"optimizer.weight_decay" = [0.1]', "a search study has no [grid]"),
    ],
)
def test_mistakes_are_refused_with_the_key_path(write, host, search, space, extra, message):
    path = write(search, space, extra)
    with pytest.raises(SpecError) as caught:
        check(path, host)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_line_refuses_in_one_line_and_writes_nothing(write, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(GOOD, '"optimizer.lr" = { uniform = [-1.0, 0.1] }')
    assert main(["sweep", str(path), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "search.space.'optimizer.lr'" in error and not (tmp_path / "out").exists()


def test_dry_run_shows_the_search(write, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(GOOD, extra=VARIANTS + '\n[search.spaces.lora]\n"method.params.rank" = { choice = [4, 8] }')
    assert main(["sweep", str(path), "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "2 variant(s) x 4 trials" in shown and "choice [4, 8]" in shown and not (tmp_path / "runs").exists()


def test_objective_paths_lead_to_numbers():
    summary = {"A_KA": {"final": 0.5}, "validation": {"A_ZS": {"final": 0.25}}, "method": "lora"}
    assert lookup(summary, "A_KA.final") == 0.5 and lookup(summary["validation"], "A_ZS.final") == 0.25
    assert lookup(summary, "A_KA.mean") is None and lookup(summary, "method") is None


def test_a_spec_without_a_validation_split_is_written_and_fingerprinted_as_before(small_spec):
    import hashlib
    import json

    from fomo_host.spec import RESULT_NEUTRAL_RUN_KEYS
    from fomo_host.spec_loading import load_spec

    spec = load_spec(small_spec())
    assert "split" not in spec.to_toml()
    content = spec.model_dump(mode="json")
    for key in RESULT_NEUTRAL_RUN_KEYS:
        content["run"].pop(key, None)
    for key in ("prefetch", "workers"):
        content["data"].pop(key, None)
    content["evaluation"].pop("split")
    # the keys updates added hash as before where unused, like the split
    content["data"].pop("updates")
    content["data"].pop("train_tasks")
    content.pop("release")
    if content["model"].get("warm_start") is not None:
        content["model"]["warm_start"].pop("data")  # the pool as the warm start's data hashes as before, too
    assert spec.fingerprint() == hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    validated = load_spec(small_spec(), ['evaluation.split="validation"'])
    assert validated.fingerprint() != spec.fingerprint() and 'split = "validation"' in validated.to_toml()


def test_a_confirmed_trial_sets_its_values_inside_its_variant_table():
    from fomo_host.commands.sweep_search import merge_override

    sets: dict = {}
    merge_override(sets, ["method"], {"name": "lora", "params": {"rank": 8, "alpha": 16}})
    merge_override(sets, ["method", "params", "rank"], 32)
    merge_override(sets, ["optimizer", "lr"], 1e-4)
    assert sets == {"method": {"name": "lora", "params": {"rank": 32, "alpha": 16}}, "optimizer.lr": 1e-4}


@pytest.mark.parametrize(
    ("statuses", "state"), [(["pruned"], "pruned"), (["finished"], "finished"), (["finished", "running"], "running"), ([], "running")]
)
def test_a_trial_the_search_has_not_told_yet_shows_how_its_runs_ended(tmp_path, statuses, state):
    # the sweep tells Optuna at a round's end; meanwhile compare says what the index knows, not "running"
    from types import SimpleNamespace

    from fomo_host.reporting.search import trial_result
    from fomo_host.study.index import StudyIndex, StudyRun

    runs = [
        StudyRun(key=f"v/trial-000/seed-{seed}", run_dir=f"runs/v/trial-000/seed-{seed}", group=0, label="v", variant="v", grid={},
                 seed=seed, overrides=[], fingerprint="f", status=status, trial=0)
        for seed, status in enumerate(statuses)
    ]  # fmt: skip
    frozen = SimpleNamespace(state=SimpleNamespace(name="RUNNING"), number=0, params={"optimizer.lr": 1e-3}, values=None, distributions={})
    result = trial_result(StudyIndex(tmp_path, {}, runs), "v", frozen, runs, on_front=False)
    assert result.state == state and result.values is None


def test_a_round_starts_the_variants_whose_runs_took_longest_first(tmp_path):
    from fomo_host.run_request import RunRequest
    from fomo_host.study.index import StudyIndex, StudyRun
    from fomo_host.study.search import longest_first

    def run(key: str, minutes: int) -> StudyRun:
        return StudyRun(key=key, run_dir=f"runs/{key}", group=0, label=key, variant=key.split("/")[0], grid={}, seed=0,
                        overrides=[], fingerprint="f", status="finished", started="2026-12-07T08:00:00",
                        ended=f"2026-12-07T08:{minutes:02d}:00")  # fmt: skip

    index = StudyIndex(
        tmp_path, {}, [run("finetune/trial-000/seed-0", 5), run("bitfit/trial-000/seed-0", 10), run("lora/trial-000/seed-0", 7)]
    )
    keys = ["finetune/trial-001/seed-0", "lora/trial-001/seed-0", "bitfit/trial-001/seed-0", "si/trial-000/seed-0"]
    requests = [RunRequest(key=key, label=key, seed=0, spec=tmp_path, overrides=(), run_dir=tmp_path, log=tmp_path) for key in keys]
    ordered = [request.key for request in longest_first(index, requests)]
    # unknown durations (a variant with no finished run yet) keep their place after the known ones
    assert ordered == ["bitfit/trial-001/seed-0", "lora/trial-001/seed-0", "finetune/trial-001/seed-0", "si/trial-000/seed-0"]


def test_a_best_value_at_the_edge_of_its_range_is_named(capsys):
    # a best lr at the top of a log range (as BitFit's search found it) or a knob at its last step may have its optimum
    # beyond the range: compare says so below the table, and in its JSON summary
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from fomo_host.reporting.search import SearchResults, print_search_comparison, range_edge, range_edges, trial_result

    lr = FloatDistribution(1e-4, 3e-2, log=True)
    weight = FloatDistribution(0.1, 0.9, step=0.1)
    assert range_edge(0.0269, lr) == "top" and range_edge(1.2e-4, lr) == "bottom" and range_edge(1e-2, lr) is None
    assert range_edge(0.9, weight) == "top" and range_edge(0.5, weight) is None
    assert range_edge(2, CategoricalDistribution([2, 4, 8])) is None

    studies = {}
    trials = []
    for variant, params, distributions in [
        ("bitfit", {"optimizer.lr": 0.0269}, {"optimizer.lr": lr}),
        ("ema-merge", {"optimizer.lr": 1.2e-3, "merger.params.weight": 0.5}, {"optimizer.lr": lr, "merger.params.weight": weight}),
    ]:
        study = optuna.create_study(direction="maximize")
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=0.6))
        studies[variant] = study
        # as load_search reads a trial: its params and the ranges they were drawn from, off Optuna's frozen trial
        trials.append(trial_result(None, variant, study.trials[0], [], on_front=True))  # type: ignore[arg-type]
    search = SearchResults(Path("runs/search"), None, ["GM.final:max"], "validation", trials, studies)  # type: ignore[arg-type]
    assert range_edges(search) == [
        "bitfit trial 0: optimizer.lr = 0.0269 is at the top of its searched range [0.0001, 0.03], log scale; "
        "the best may lie beyond it: widen the range where the knob allows and search again"
    ]
    print_search_comparison(search, as_json=False, markdown=True, best_only=True)
    assert "at the edge: bitfit trial 0: optimizer.lr = 0.0269 is at the top" in capsys.readouterr().out
    print_search_comparison(search, as_json=True, markdown=False)
    import json

    assert json.loads(capsys.readouterr().out)["summary"]["at_range_edge"] == range_edges(search)
