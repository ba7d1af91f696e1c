"""Studies without training: the study file's errors, the expansion into points, the index, the sweep's bookkeeping."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.components import Launcher, LaunchEvents
from fomo_host.errors import FomoError, SpecError
from fomo_host.plugins import load_plugins
from fomo_host.progress import Reporter
from fomo_host.run_request import RunRequest
from fomo_host.spec import parse_override
from fomo_host.study.file import load_study_file
from fomo_host.study.index import read_index, update_run
from fomo_host.study.points import StudyPlan, plan_study, toml_inline
from fomo_host.study.sweep import SweepOptions, create_study, requests_to_run, resume_study, run_sweep

STUDY = """
base = "spec.toml"
seeds = [0, 1]
[grid]
"optimizer.lr" = [1e-3, 3e-4]
"method.name" = ["finetune", "bitfit"]
[[variants]]
label = "plain"
[[variants]]
label = "ft-merge"
set = {{ "merger.name" = "finetuned" }}
{extra}
"""


@pytest.fixture(scope="module")
def host():
    return load_plugins()


@pytest.fixture
def study_file(small_spec, tmp_path):
    def write(extra: str = "", text: str | None = None) -> Path:
        small_spec(num_tasks=2, steps=2)
        path = tmp_path / "study.toml"
        path.write_text(STUDY.format(extra=extra) if text is None else text, encoding="utf-8")
        return path

    return write


def plan(path: Path, host, sets: Sequence[str] = ()) -> StudyPlan:
    study_sets = [text for text in sets if text.split("=")[0].split(".")[0] in {"seeds", "launcher", "name"}]
    spec_sets = [text for text in sets if text not in study_sets]
    return plan_study(load_study_file(path, study_sets), path, spec_sets, host)


# ----------------------------------------------------------------------------- the study file


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("seed = [0]", "seed: unknown key"),
        ('[launcher]\nname = "local"\nparams = { max_paralel = 2 }', "launcher.params.max_paralel: unknown key"),
        ('[launcher]\nname = "kubernetes"', "unknown launcher 'kubernetes' at"),
        ("[[variants]]\nlabel = 'plain'", "variant label 'plain' is used twice"),
        ("[[variants]]\nlabel = 'x'\nset = { 'optimizer.lr' = 1.0 }", "'optimizer.lr' overlaps the grid's 'optimizer.lr'"),
        ("[[variants]]\nlabel = 'x'\nset = { 'method' = { name = 'lora' } }", "'method' overlaps the grid's 'method.name'"),
        ("[[variants]]\nlabel = 'x'\nset = { 'optimzer.lr' = 1.0 }", "variants.2.set: 'optimzer.lr' is not a spec key path"),
        ("[[variants]]\nlabel = '../etc'", "variants.2.label: use letters"),
    ],
)
def test_study_file_errors_name_the_key(study_file, host, extra, message):
    with pytest.raises(FomoError) as caught:
        plan(study_file(extra), host)
    text = str(caught.value)
    assert message in text and "\n" not in text and str(study_file()) in text, text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('base = "spec.toml"\nseeds = [0, 0]', "seeds: seeds are listed twice"),
        ('base = "spec.toml"\nseeds = []', "seeds: List should have at least 1 item"),
        ('base = "spec.toml"\nseeds = [-1]', "seeds must be at least 0"),
        ('base = "spec.toml"\n[grid]\n"optimizer.lr" = []', "grid: 'optimizer.lr' has no values"),
        ('base = "spec.toml"\n[grid]\n"run.seed" = [1, 2]', "'run.seed' cannot be set in a study: use the study's seeds"),
        ('base = "spec.toml"\n[grid]\n"run" = [{ output_dir = "x" }]', "'run' cannot be set in a study"),
        ('base = "spec.toml"\nset = { "method.name" = "lora" }\n[grid]\n"method" = [{ name = "x" }]', "set: 'method.name' is replaced"),
        ('base = "nowhere.toml"', "base: no such spec file"),
        ("seeds = [0]", "base: required key is missing"),
        ('base = "spec.toml"\n[grid]\n"optimizer.lr" = [1e-3, -1.0]', "point 'lr=-1' seed 0: optimizer.lr: Input should be greater than 0"),
        ('base = "spec.toml"\n[[variants]]\nlabel = "l"\nset = { "method.name" = "lora2" }', "point 'l' seed 0: method.name; available"),
    ],
)
def test_invalid_studies_and_points_are_refused_before_anything_runs(study_file, host, text, message):
    with pytest.raises(FomoError) as caught:
        plan(study_file(text=text), host)
    assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_a_set_the_grid_overwrites_is_an_error(study_file, host):
    with pytest.raises(SpecError, match="--set method.name: the study varies 'method.name'"):
        plan(study_file(), host, ["method.name=lora"])
    with pytest.raises(SpecError, match="not a study key"):
        load_study_file(study_file(), ["grid.x=1"])


def test_sweep_cli_errors_are_one_line_with_status_2(study_file, tmp_path, capsys):
    assert main(["sweep", str(study_file()), "--set", "optimizer.lr=-1", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "the study varies 'optimizer.lr'" in err[0]
    assert main(["sweep", str(study_file()), "--set", "evaluation.batch_size=0", "--dry-run"]) == 2
    assert "evaluation.batch_size: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["sweep", "--dry-run"]) == 2
    assert "give a study file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- points


def test_grid_times_variants_times_seeds(study_file, host):
    result = plan(study_file(), host)
    assert len(result.points) == 2 * (2 * 2) * 2 and result.groups == 8
    first = result.points[0]
    assert (first.variant, first.grid, first.seed, first.label) == (
        "plain",
        {"optimizer.lr": 1e-3, "method.name": "finetune"},
        0,
        "plain, lr=0.001, finetune",
    )
    assert first.overrides == ("optimizer.lr=0.001", 'method.name="finetune"', "run.seed=0")
    assert first.key == "00-plain_lr-0.001_finetune/seed-0"
    merged = [point for point in result.points if point.variant == "ft-merge"]
    assert len(merged) == 8 and all(point.overrides[0] == 'merger.name="finetuned"' for point in merged)
    assert [point.seed for point in result.points[:4]] == [0, 1, 0, 1]
    # points that differ only by seed share a group, label and everything but the seed
    groups: dict[int, set] = {}
    for point in result.points:
        groups.setdefault(point.group, set()).add((point.label, point.overrides[:-1]))
    assert all(len(members) == 1 for members in groups.values())
    assert len({point.key for point in result.points}) == len(result.points)
    assert len({point.fingerprint for point in result.points}) == len(result.points)


def test_no_grid_no_variants_is_the_base_spec_once_per_seed(study_file, host):
    result = plan(study_file(text='base = "spec.toml"\nset = { "optimizer.lr" = 2e-4 }'), host, ["seeds=[3, 4]", "budget.steps_per_task=1"])
    assert [(point.label, point.seed) for point in result.points] == [("base", 3), ("base", 4)]
    assert result.points[0].overrides == ("optimizer.lr=0.0002", "budget.steps_per_task=1", "run.seed=3")
    default = plan(study_file(text='base = "spec.toml"'), host)
    assert [point.seed for point in default.points] == [0]  # the base spec's seed


@pytest.mark.parametrize(
    "value",
    [
        1e-3,
        3,
        True,
        "finetune",
        'a "quoted" name',
        [1, 2],
        {"name": "lora", "params": {"rank": 8, "targets": ["attn", "c_fc"]}},
        {"a.b": 1},
        {},
    ],
)
def test_overrides_read_back_as_the_value(value):
    keys, read = parse_override(f"method.params.x={toml_inline(value)}")
    assert keys == ["method", "params", "x"] and read == value


# ----------------------------------------------------------------------------- the index


def _update_many(study_dir: str, keys: list[str], rounds: int) -> None:
    for attempt in range(rounds):
        for key in keys:
            update_run(Path(study_dir), key, attempts=attempt + 1, job=f"{key}-{attempt}")


def test_concurrent_index_updates_from_threads_and_processes_lose_nothing(study_file, host, tmp_path):
    result = plan(study_file(), host)
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    index = create_study(result, study_dir, SweepOptions())
    keys = [run.key for run in index.runs]
    # processes forked before the threads start, so that no child inherits a lock a thread holds
    context = multiprocessing.get_context("fork")
    workers: list = [context.Process(target=_update_many, args=(str(study_dir), keys[i::4], 15)) for i in range(2)]
    workers += [threading.Thread(target=_update_many, args=(str(study_dir), keys[i::4], 15)) for i in range(2, 4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    final = read_index(study_dir)
    assert [(run.attempts, run.job) for run in final.runs] == [(15, f"{run.key}-14") for run in final.runs]
    assert json.loads((study_dir / "study.json").read_text())["format"] == 1


def test_read_index_refuses_what_is_not_a_study(tmp_path):
    with pytest.raises(FomoError, match="not a study directory"):
        read_index(tmp_path)
    (tmp_path / "study.json").write_text('{"format": 99, "study": {}, "runs": []}')
    with pytest.raises(FomoError, match="index format 99"):
        read_index(tmp_path)


# ----------------------------------------------------------------------------- the sweep's bookkeeping, with a launcher that only pretends


class ScriptedLauncher(Launcher):
    """Ends each run as a script says: finished (writes a summary), a failure with an error line in the log, or silence."""

    def __init__(self, outcomes: dict[str, str], interrupt_after: int | None = None) -> None:
        self.outcomes, self.interrupt_after, self.seen = outcomes, interrupt_after, []

    def launch(self, requests: Sequence[RunRequest], events: LaunchEvents, work_dir: Path) -> None:
        for number, request in enumerate(requests):
            if self.interrupt_after is not None and number == self.interrupt_after:
                events.started(request, "pid 1")
                raise KeyboardInterrupt
            self.seen.append(request.key)
            outcome = self.outcomes.get(request.key, "finish")
            if outcome == "silent":
                continue
            events.started(request, f"pid {100 + number}")
            request.run_dir.mkdir(parents=True, exist_ok=True)
            request.log.parent.mkdir(parents=True, exist_ok=True)
            if outcome == "finish":
                (request.run_dir / "summary.json").write_text(json.dumps({"GM": {"final": 0.5}}))
                events.finished(request, 0)
            else:
                request.log.write_text("training...\nerror: data.num_tasks is 500 but the stream has only 12 concepts\n")
                events.finished(request, 2)


def test_failed_runs_keep_their_error_and_the_others_go_on(study_file, host, tmp_path):
    result = plan(study_file(), host, ["seeds=[0]"])
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    index = create_study(result, study_dir, SweepOptions(("seeds=[0]",)))
    broken = index.runs[1].key
    tally = run_sweep(index, ScriptedLauncher({broken: "fail", index.runs[2].key: "silent"}), "scripted", Reporter(enabled=False))
    final = read_index(study_dir)
    statuses = {run.key: run.status for run in final.runs}
    assert statuses.pop(broken) == "failed" and statuses.pop(index.runs[2].key) == "failed"
    assert set(statuses.values()) == {"finished"} and tally.finished == len(statuses) and tally.failed == 2
    error = final.run(broken).error
    assert error.startswith("data.num_tasks is 500 but the stream has only 12 concepts (exit status 2; log: ")
    assert final.run(index.runs[2].key).error == "the launcher returned without reporting this run's end"
    # resuming runs only what did not finish
    again = ScriptedLauncher({})
    resumed, notes = resume_study(result, study_dir, SweepOptions(("seeds=[0]",)))
    run_sweep(resumed, again, "scripted", Reporter(enabled=False))
    assert sorted(again.seen) == sorted([broken, index.runs[2].key]) and notes == []
    assert {run.status for run in read_index(study_dir).runs} == {"finished"}


def test_an_interrupted_sweep_leaves_its_running_runs_interrupted(study_file, host, tmp_path):
    result = plan(study_file(), host, ["seeds=[0]"])
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    index = create_study(result, study_dir, SweepOptions())
    with pytest.raises(KeyboardInterrupt):
        run_sweep(index, ScriptedLauncher({}, interrupt_after=3), "scripted", Reporter(enabled=False))
    statuses = [run.status for run in read_index(study_dir).runs]
    assert statuses[:4] == ["finished", "finished", "finished", "interrupted"] and set(statuses[4:]) == {"pending"}
    assert [request.key for request in requests_to_run(read_index(study_dir))] == [run.key for run in index.runs[3:]]


def test_resume_adds_new_seeds_and_refuses_a_changed_spec(study_file, host, tmp_path):
    path = study_file()
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    create_study(plan(path, host, ["seeds=[0]"]), study_dir, SweepOptions(("seeds=[0]",)))
    grown, _ = resume_study(plan(path, host), study_dir, SweepOptions())
    assert len(grown.runs) == 16 and sorted({run.seed for run in grown.runs}) == [0, 1]
    with pytest.raises(FomoError, match="would now get another spec than it started with"):
        resume_study(plan(path, host, ["evaluation.batch_size=7"]), study_dir, SweepOptions())


STUDIES = sorted((Path(__file__).resolve().parents[1] / "specs" / "studies").glob("*.toml"))


@pytest.mark.parametrize("path", STUDIES, ids=[path.stem for path in STUDIES])
def test_the_shipped_studies_are_valid(host, path):
    study = load_study_file(path)
    if study.search is not None:
        from fomo_host.study.search import plan_search

        searched = plan_search(study, path, [], host)
        assert searched.variants and all(variant.space for variant in searched.variants)
        return
    result = plan_study(study, path, [], host)
    # the findings studies run each method at its tuned setting on seeds the search (seed 0) never used (on 5 of
    # them where 3 seeds left claims within the spread); the benchmark's control covers every seed its studies use,
    # the larger model's control the scaling study's seeds
    findings_seeds = {
        "benchmark-mixtures": [1, 2, 3],
        **{f"benchmark-{name}": [1, 2, 3, 4, 5] for name in ("methods", "merges", "schedules", "orderings", "scaling", "scaling-control")},
        "benchmark-control": [0, 1, 2, 3, 4, 5],
    }
    assert sorted({point.seed for point in result.points}) == findings_seeds.get(path.stem, [0, 1, 2])
    if path.stem in {"methods", "merging"}:
        assert result.groups == {"methods": 12, "merging": 10}[path.stem]


def test_a_run_another_process_holds_is_waited_for_not_started_twice(study_file, host, tmp_path):
    from fomo_host.locking import RunDirectoryLock

    result = plan(study_file(), host, ["seeds=[0]"])
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    index = create_study(result, study_dir, SweepOptions())
    held = index.run_path(index.runs[0])
    held.mkdir(parents=True)
    lock = RunDirectoryLock(held)
    lock.acquire()
    launcher = ScriptedLauncher({})
    lines: list[str] = []
    reporter = Reporter(enabled=False)
    reporter.line = lines.append  # type: ignore[method-assign]
    threading.Timer(0.5, lock.release).start()
    run_sweep(index, launcher, "scripted", reporter, poll_s=0.05)
    # the held run went last, once its holder let go, and only once
    assert launcher.seen[-1] == index.runs[0].key and launcher.seen.count(index.runs[0].key) == 1
    assert any(line.startswith(f"waiting for {index.runs[0].key}: still running in another process (pid") for line in lines)
    assert {run.status for run in read_index(study_dir).runs} == {"finished"}


def test_the_findings_studies_share_the_runs_reuse_copies(host):
    # sweep --reuse copies a run only where the resolved specs are one: an edit that parts them costs 21 runs, silently
    def fingerprints(name: str) -> dict[str, str]:
        path = Path(__file__).resolve().parents[1] / "specs" / "studies" / f"benchmark-{name}.toml"
        return {point.label: point.fingerprint for point in plan_study(load_study_file(path), path, [], host).points if point.seed == 1}

    methods, merges = fingerprints("methods"), fingerprints("merges")
    shared = {"merges": "no merge", "schedules": "cosine per task", "mixtures": "paper 33-34-33", "orderings": "random"}
    for name, label in shared.items():
        assert fingerprints(name)[label] == methods["finetune"], name
    scaling = fingerprints("scaling")
    assert scaling["3.5M finetune, maf_per_task=388"] == methods["finetune"]
    assert scaling["3.5M lora, maf_per_task=388"] == methods["lora"]
    assert scaling["3.5M ema-merge, maf_per_task=388"] == merges["EMA-merge"]
