"""Real tiny searches: Optuna asks, the local launcher (and the ray launcher) runs the trials two at a time, the median
pruner stops bad ones along the stream; a killed sweep resumes without losing or repeating a trial; the front; the
confirmation on fresh seeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fomo_host.study.index import read_index

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "fomo_host.cli"]
# lr 3e-2 wrecks the tiny model's zero-shot accuracy within a task, 1e-5 barely moves it: with two finished
# trials to compare against, the median pruner must stop a 3e-2 trial after its first task. The random sampler with
# seed 11 (reseeded per trial from it) proposes 3e-2, 1e-5 (the first round, both finished), then 3e-2 three times:
# each below the median at task 1
SEARCH = """
base = "spec.toml"
seeds = [0]
[search]
sampler = "random"
seed = {seed}
objectives = {objectives}
trials = {trials}
pruner = {pruner}
split = "validation"
[search.space]
"optimizer.lr" = {{ choice = [1e-5, 3e-2] }}
[launcher]
name = "{launcher}"
params = {params}
"""
LOCAL = "{ max_parallel = 2, threads_per_run = 1 }"
RAY = '{{ address = "{address}", cpus_per_run = 1, max_parallel = 2 }}'
MEDIAN = '{ name = "median", params = { startup_trials = 2 } }'


def fomo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if check and result.returncode != 0:
        raise AssertionError(f"fomo-host {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def write_search(directory: Path, spec_text: str, name: str = "search.toml", **values: object) -> Path:
    settings = {
        "seed": 11,
        "objectives": '["A_ZS.final:max"]',
        "trials": 8,
        "pruner": MEDIAN,
        "launcher": "local",
        "params": LOCAL,
        **values,
    }
    (directory / "spec.toml").write_text(spec_text, encoding="utf-8")
    path = directory / name
    path.write_text(SEARCH.format(**settings), encoding="utf-8")
    return path


@pytest.fixture(scope="session")  # a string: session-wide, so that the tests not using `searched` spread over the workers
def spec_text(small_spec_text) -> str:
    text = small_spec_text.format(num_tasks=3, steps=4)
    return text.replace('zero_shot = ["shapes-outline"]', 'zero_shot = ["shapes-outline"]\nvalidation_per_class = 4')


def journal_trials(study_dir: Path, study: str = "search") -> list:
    import optuna

    from fomo_host.search_journal import journal_storage
    from fomo_host.study.search import journal_path

    return optuna.load_study(study_name=study, storage=journal_storage(journal_path(study_dir))).trials


@pytest.fixture(scope="module")
def searched(tmp_path_factory, spec_text) -> Path:
    # kept in the worker's base folder: pytest tears a module's fixtures down whenever a test of another module runs in
    # between on the same worker, and the search (a minute and more) is then set up once, not again
    directory = tmp_path_factory.getbasetemp() / "searched"
    study_dir = directory / "out"
    if not (directory / "done").is_file():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        fomo("sweep", str(write_search(directory, spec_text)), "--output", str(study_dir))
        (directory / "done").touch()
    return study_dir


@pytest.fixture(scope="module")
def searched_on_ray(tmp_path_factory, spec_text) -> Path:
    """The same search with the ray launcher, on a local Ray of 2 CPUs that this module starts (as the launcher's own tests
    do): the sweep connects to it by address in each round of trials, instead of starting and stopping a Ray of its own."""
    ray = pytest.importorskip("ray", reason="the ray launcher needs the ray package")
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # a sandbox without the sockets or shared memory Ray needs
        pytest.skip(f"a local Ray cannot start here: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    try:
        directory = tmp_path_factory.mktemp("search-ray")
        study_dir = directory / "out"
        params = RAY.format(address=context.address_info["gcs_address"])
        fomo("sweep", str(write_search(directory, spec_text, launcher="ray", params=params)), "--output", str(study_dir))
    finally:
        ray.shutdown()
    return study_dir


def check_pruned_search(study_dir: Path) -> None:
    """8 trials under unique numbers, at least one pruned after its first tasks with its directory kept, the rest finished,
    and each trial told its validation objective."""
    trials = journal_trials(study_dir)
    assert len(trials) == 8 and sorted(t.number for t in trials) == list(range(8))
    states = [t.state.name for t in trials]
    assert "PRUNED" in states and set(states) <= {"COMPLETE", "PRUNED"}
    runs = read_index(study_dir).runs
    assert sorted(run.trial for run in runs) == list(range(8))
    pruned = [run for run in runs if run.status == "pruned"]
    assert pruned and all(run.tasks_reached is not None and run.tasks_reached < 3 for run in pruned)
    for run in pruned:
        records = (study_dir / run.run_dir / "results.jsonl").read_text().splitlines()
        assert len(records) == 1 + run.tasks_reached  # the base model and the tasks it reached: the directory is kept
        assert all("validation" in json.loads(line) for line in records)  # the test split is recorded beside it
        assert not (study_dir / run.run_dir / "summary.json").exists()
    finished = [run for run in runs if run.status == "finished"]
    assert finished and all(run.tasks_reached == 3 for run in finished)
    assert len(pruned) + len(finished) == 8
    # each trial's value is its validation objective, not the test one
    summary = json.loads((study_dir / finished[0].run_dir / "summary.json").read_text())
    told = next(t for t in trials if t.number == finished[0].trial).value
    assert told == pytest.approx(summary["validation"]["A_ZS"]["final"])


def test_the_median_pruner_stops_a_bad_trial_after_its_first_tasks(searched):
    check_pruned_search(searched)


@pytest.mark.multiprocess  # minutes (Ray's workers, then a run each): in nox -s multiprocess, not the default run
def test_the_same_search_under_the_ray_launcher(searched_on_ray):
    check_pruned_search(searched_on_ray)
    assert all((run.job or "").startswith("ray task ") for run in read_index(searched_on_ray).runs)  # Ray ran every trial


def test_compare_and_report_a_search(searched, tmp_path):
    shown = fomo("compare", str(searched)).stdout
    assert "best trial:" in shown and "trials pruned; compute saved:" in shown
    table = json.loads(fomo("compare", str(searched), "--json").stdout)
    assert table["summary"]["pruned"] >= 1 and table["summary"]["maf_saved"] > 0
    assert all("test A_KA" in row for row in table["trials"] if row["state"] == "complete")
    best = fomo("compare", str(searched), "--best", "--markdown").stdout.splitlines()
    assert best[0] == "| variant | trial | params | A_ZS.final:max | test A_KA | test A_ZS | trials |" and len(best[2:]) >= 1
    assert best[2].endswith(f"| {table['summary']['complete']} complete, {table['summary']['pruned']} pruned |")
    listed = fomo("report", str(searched), "--out", str(tmp_path / "report")).stdout
    assert "search-plane.png" in listed and "search-history-search" in listed and (tmp_path / "report" / "index.html").is_file()


def test_confirm_runs_the_best_trial_on_seeds_the_search_never_used(searched):
    refused = fomo("sweep", str(searched), "--confirm", "1", "--seeds", "0", check=False)
    assert refused.returncode == 2 and "the search used seed(s) [0]" in refused.stderr
    fomo("sweep", str(searched), "--confirm", "1", "--seeds", "7")
    confirmed = read_index(searched / "confirm")
    assert [run.seed for run in confirmed.runs] == [7] and confirmed.runs[0].status == "finished"
    assert not any('evaluation.split="validation"' in text for text in confirmed.runs[0].overrides)
    best = min((t for t in journal_trials(searched) if t.state.name == "COMPLETE"), key=lambda t: (-t.value, t.number))
    assert f"optimizer.lr={best.params['optimizer.lr']}" in " ".join(confirmed.runs[0].overrides)


def test_a_killed_sweep_resumes_without_losing_or_repeating_a_trial(tmp_path, spec_text):
    study = write_search(tmp_path, spec_text, seed=5, trials=6)
    study_dir = tmp_path / "out"
    sweep = subprocess.Popen([*CLI, "sweep", str(study), "--output", str(study_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(1.0)
            if (study_dir / "study.json").is_file():
                runs = read_index(study_dir).runs
                if sum(run.status in ("finished", "pruned") for run in runs) >= 2 and any(run.status == "running" for run in runs):
                    break
        os.kill(sweep.pid, signal.SIGKILL)
    finally:
        sweep.wait()
    killed_at = len(journal_trials(study_dir))
    assert 0 < killed_at < 6
    fomo("sweep", "--resume", str(study_dir))
    trials = journal_trials(study_dir)
    numbers = [t.number for t in trials]
    assert len(numbers) == 6 and sorted(numbers) == list(range(6))
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    keys = [run.key for run in read_index(study_dir).runs]
    assert len(keys) == len(set(keys)) == 6
    # raising the trials on resume searches further, under new numbers
    fomo("sweep", "--resume", str(study_dir), "--set", "search.trials=7")
    assert sorted(t.number for t in journal_trials(study_dir)) == list(range(7))


def test_a_multi_objective_search_returns_a_front_no_trial_dominates(tmp_path, spec_text):
    from fomo_host.reporting.search import dominates, load_search

    study = write_search(tmp_path, spec_text, objectives='["A_KA.final:max", "A_ZS.final:max"]', trials=3, pruner='{ name = "none" }')
    study_dir = tmp_path / "out"
    fomo("sweep", str(study), "--output", str(study_dir))
    search = load_search(study_dir)
    complete = [trial for trial in search.trials if trial.state == "complete"]
    front = [trial for trial in complete if trial.on_front]
    assert len(complete) == 3 and front
    for point in front:
        assert not any(dominates(other.values, point.values, [True, True]) for other in complete if other is not point)
    for trial in complete:
        if not trial.on_front:
            assert any(dominates(point.values, trial.values, [True, True]) or point.values == trial.values for point in front)
