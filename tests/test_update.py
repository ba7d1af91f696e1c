"""Keeping a run current: ``fomo-host update`` continues a finished run exactly, releases each update, refuses in one line.

The central check: a 2-task run updated with 2 more tasks writes the same records as a
4-task run (evaluation times aside), for horizon-free schedules and for mergers that keep
history (ema) or deploy other weights than they train from (general), with the optimizer
state kept across tasks. The runs are tiny (4 tasks of 2 steps on the embedded tiny CLIP)
and shared by the module's tests.

Everything here runs on one CPU thread: the kill test forks the test process, which is only
safe when no OpenMP thread team has run in it (see tests/test_faults.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from fomo_host.cli import main
from fomo_host.testing.tiny_spec import tiny_spec

from .test_faults import comparable, fork_run

pytestmark = pytest.mark.slow

SPEC = tiny_spec(
    num_tasks=4, steps=2, name="kept-current", adaptation=["letters", "arrows"], subset_fraction=1.0, optimizer="reset_per_task = false"
)

TRAINING = {
    "infinite": ['scheduler={ name = "infinite", params = { warmup = 0.5, decay = 0, cooldown = 0.5, constant = 0.5 } }'],
    "rsqrt": ['scheduler={ name = "rsqrt", params = { warmup = 0.5, cooldown = 0.5 } }'],
    "schedule-free": ['optimizer.name="adamw-schedulefree"', 'scheduler={ name = "constant" }'],
}
"""How the runs train: the overrides of each horizon-free setting checked (schedule-free AdamW: no decay schedule, its
averaged iterate evaluated, merged and carried into the update)."""
MERGERS = {"none": "{}", "ema": "{ weight = 0.5 }", "general": "{}"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli(*argv: str) -> tuple[int, str]:
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        status = main(list(argv))
    return status, log.getvalue()


def write_spec(folder: Path, merger: str) -> Path:
    path = folder / f"{merger}.toml"
    path.write_text(SPEC + f'\n[merger]\nname = "{merger}"\nparams = {MERGERS[merger]}\n', encoding="utf-8")
    return path


def run(spec: Path, run_dir: Path, *sets: str) -> Path:
    status, log = cli("run", str(spec), "--output", str(run_dir), "--quiet", *(item for s in sets for item in ("--set", s)))
    assert status == 0, log[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory, one_thread):
    """Per (training setting, merger): the spec, a 4-task run and a finished 2-task run of the same stream (made on demand)."""
    root = tmp_path_factory.mktemp("update")
    made: dict[tuple[str, str], tuple[Path, Path, Path]] = {}

    def get(training: str, merger: str) -> tuple[Path, Path, Path]:
        if (training, merger) not in made:
            spec = write_spec(root, merger)
            whole = run(spec, root / f"{training}-{merger}-4", *TRAINING[training])
            half = run(spec, root / f"{training}-{merger}-2", *TRAINING[training], "data.train_tasks=2")
            made[training, merger] = spec, whole, half
        return made[training, merger]

    return get


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and modification time (the lock file aside: taking the lock writes who holds it)."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() and path.name != ".lock"
    }


@pytest.mark.parametrize("training", list(TRAINING))
@pytest.mark.parametrize("merger", list(MERGERS))
def test_two_tasks_updated_with_two_more_equal_four_tasks(streams, tmp_path, training, merger):
    _, whole, half = streams(training, merger)
    updated = copy_run(half, tmp_path / "updated")
    status, log = cli("update", str(updated), "--tasks", "2", "--quiet")
    assert status == 0, log[-3000:]
    assert comparable(updated) == comparable(whole)
    summary = json.loads((updated / "summary.json").read_text())
    assert summary["tasks_done"] == 4 and summary["run"]["num_tasks"] == 4
    updates = [json.loads(line) for line in (updated / "updates.jsonl").read_text().splitlines()]
    assert [(u["update"], u["status"], u["tasks"], u["release"]) for u in updates] == [(1, "finished", [3, 4], 2)]
    assert (updated / "updates" / "0" / "spec.toml").is_file() and (updated / "updates" / "1" / "spec.toml").is_file()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks the test process")
def test_an_update_killed_mid_task_resumes_to_the_same_records(streams, tmp_path):
    _, whole, half = streams("infinite", "ema")
    expected = comparable(whole)
    for fault, resume in (("training.step:3", ["update"]), ("checkpoint.state:1", ["run", "--resume"])):
        updated = copy_run(half, tmp_path / fault.replace(":", "-"))
        log = tmp_path / f"{fault}.log"
        # the third step of the update is the first of its second task
        assert fork_run(["update", str(updated), "--tasks", "2", "--quiet"], log, fault=fault) == ("killed", signal.SIGKILL)
        status = fork_run([*resume, str(updated), "--quiet"], tmp_path / f"{fault}.resume.log")
        assert status == ("exited", 0), (tmp_path / f"{fault}.resume.log").read_text()[-3000:]
        assert comparable(updated) == expected, f"{fault}: the resumed update differs from the 4-task run"
        assert json.loads((updated / "updates.jsonl").read_text())["status"] == "finished"


def test_releases_are_numbered_checksummed_listed_and_exported(streams, tmp_path, monkeypatch):
    import hashlib

    from fomo_host.weights import load_weights

    _, _, half = streams("infinite", "none")
    updated = copy_run(half, tmp_path / "updated")
    assert cli("update", str(updated), "--tasks", "1", "--quiet")[0] == 0
    assert cli("update", str(updated), "--tasks", "1", "--quiet")[0] == 0
    releases = [json.loads(line) for line in (updated / "releases.jsonl").read_text().splitlines()]
    assert [(r["release"], r["tasks"], r["published"]) for r in releases] == [(1, [1, 2], True), (2, [3, 3], True), (3, [4, 4], True)]
    records = [json.loads(line) for line in (updated / "results.jsonl").read_text().splitlines()]
    for release in releases:
        record = next(r for r in records if r["task"] + 1 == release["tasks_done"])
        assert (release["A_KA"], release["A_ZS"], release["scores"]) == (record["A_KA"], record["A_ZS"], record["scores"])
        weights = updated / release["weights"]
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == release["sha256"]
        assert json.loads((weights.parent / "release.json").read_text()) == release
        assert sum(release["seen"].values()) == sum(
            sum(r["task_datasets"].values()) for r in records if 0 <= r["task"] < release["tasks_done"]
        )
    assert (updated / "releases" / "v3" / "open_clip_config.json").is_file()

    monkeypatch.setenv("COLUMNS", "200")  # the table as wide as it needs
    status, listing = cli("releases", str(updated))
    assert status == 0 and all(f"v{n}" in listing for n in (1, 2, 3))
    change = releases[2]["A_ZS"] - releases[1]["A_ZS"]
    assert f"{change:+.4f}" in listing

    status, log = cli("export", str(updated), "--release", "1", "--out", str(tmp_path / "v1"))
    assert status == 0, log
    exported = load_weights(tmp_path / "v1" / "open_clip_model.safetensors")
    kept = load_weights(updated / "releases" / "v1" / "open_clip_model.safetensors")
    assert exported.keys() == kept.keys() and all(torch.equal(exported[k], kept[k]) for k in kept)
    status, log = cli("export", str(updated), "--release", "9", "--out", str(tmp_path / "v9"))
    assert status == 2 and "no release 9; releases: 1, 2, 3" in log and not (tmp_path / "v9").exists()


def test_the_release_gate_holds_back_a_release_that_lost_retention():
    from fomo_host.releases import gate
    from fomo_host.spec import ReleaseSection

    class Spec:
        release = ReleaseSection(min_A_ZS_change=-0.01)

    earlier = [{"release": 1, "published": True, "A_ZS": 0.60}, {"release": 2, "published": False, "A_ZS": 0.50}]
    assert gate(Spec(), earlier, 3, 0.595) is None  # within the allowed drop from the last published release (v1)
    held = gate(Spec(), earlier, 3, 0.58)
    assert held == "release v3 held back: A_ZS fell by 0.0200 from v1 (0.6000 -> 0.5800), more than release.min_A_ZS_change = -0.01 allows"
    # a zero-shot set that joins with the update is not a loss of retention: A_ZS is compared over v1's sets
    earlier[0]["evaluation_sets"] = {"adaptation": ["a"], "zero_shot": ["old"]}
    assert gate(Spec(), earlier, 3, 0.35, {"a": 0.9, "old": 0.6, "new": 0.1}) is None
    assert "fell by 0.1000" in str(gate(Spec(), earlier, 3, 0.3, {"a": 0.9, "old": 0.5, "new": 0.1}))


def test_new_evaluation_sets_join_from_their_first_task(streams, tmp_path):
    _, whole, _ = streams("infinite", "none")
    updated = copy_run(whole, tmp_path / "updated")
    data = tmp_path / "gate.toml"
    data.write_text("[release]\nmin_A_ZS_change = -1.0\n", encoding="utf-8")
    status, log = cli(
        "update",
        str(updated),
        "--data",
        str(data),
        "--set",
        'data.sources.0.params.adaptation=["letters", "arrows", "relations"]',
        "--quiet",
    )
    assert status == 0, log[-3000:]
    records = [json.loads(line) for line in (updated / "results.jsonl").read_text().splitlines()]
    assert [r["task"] for r in records] == [-1, 0, 1, 2, 3, 4]
    assert all("synthetic-relations" not in r["scores"] for r in records[:5])
    assert "synthetic-relations" in records[5]["groups"]["adaptation"] and list(records[5]["task_datasets"]) == ["synthetic-relations"]
    summary = json.loads((updated / "summary.json").read_text())
    assert [span["tasks_done"] for span in summary["evaluation_sets"]] == [[0, 4], [5, 5]]
    assert summary["evaluation_sets"][1]["adaptation"] == ["synthetic-letters", "synthetic-arrows", "synthetic-relations"]
    (entry,) = [json.loads(line) for line in (updated / "updates.jsonl").read_text().splitlines()]
    assert entry["new_adaptation"] == ["synthetic-relations"] and (updated / "updates" / "1" / "data.toml").read_text() == data.read_text()
    assert "[release]" in (updated / "spec.toml").read_text()
    releases = [json.loads(line) for line in (updated / "releases.jsonl").read_text().splitlines()]
    assert [r["published"] for r in releases] == [True, True] and releases[1]["seen"]["synthetic-relations"] > 0


def test_the_python_api_updates_a_run(streams, tmp_path):
    import fomo_host

    _, _, half = streams("rsqrt", "none")
    updated = fomo_host.update(copy_run(half, tmp_path / "updated"), tasks=1, quiet=True)
    assert [r["task"] for r in updated.records] == [-1, 0, 1, 2]


def test_the_schedule_preview_shows_a_runs_tasks_and_its_next_update(streams, tmp_path):
    _, _, half = streams("infinite", "none")
    status, out = cli("schedule", str(half), "--next", "2", "--csv")
    assert status == 0, out
    tasks = [line.split(",")[0] for line in out.splitlines()[1:]]
    assert tasks == ["1", "1", "2", "2", "3", "3", "4", "4"]
    status, out = cli("schedule", str(half))
    assert status == 0 and "2 tasks trained + 1 of the next update" in out and "3 (next)" in out


def refused(argv: list[str], folder: Path) -> str:
    before = snapshot(folder) if folder.is_dir() else None
    status, log = cli(*argv)
    lines = [line for line in log.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), log
    assert (snapshot(folder) if folder.is_dir() else None) == before, "a refused update wrote something"
    return lines[0]


def test_a_horizon_bound_scheduler_is_refused_naming_an_alternative(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("num_tasks = 4", "num_tasks = 2").replace("steps_per_task = 2", "steps_per_task = 1"), encoding="utf-8")
    run_dir = run(spec, tmp_path / "run", "scheduler.name=cosine-stream")
    line = refused(["update", str(run_dir), "--tasks", "1"], run_dir)
    assert "scheduler 'cosine-stream' needs the number of tasks up front" in line and "scheduler.name = 'infinite'" in line


def test_bad_input_is_one_line_and_writes_nothing(streams, tmp_path):
    _, _, half = streams("infinite", "none")
    run_dir = copy_run(half, tmp_path / "run")
    assert "no such run directory" in refused(["update", str(tmp_path / "missing"), "--tasks", "1"], tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "not a run directory" in refused(["update", str(tmp_path / "empty"), "--tasks", "1"], tmp_path / "empty")
    assert "nothing to update" in refused(["update", str(run_dir)], run_dir)
    assert "fewer than 5 tasks left" in refused(["update", str(run_dir), "--tasks", "5"], run_dir)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[data.sources]\n", encoding="utf-8")
    assert "not valid TOML" in refused(["update", str(run_dir), "--data", str(bad)], run_dir)
    bad.write_text("[optimizer]\nlr = 1.0\n", encoding="utf-8")
    assert "optimizer does not belong in an update's data file" in refused(["update", str(run_dir), "--data", str(bad)], run_dir)
    bad.write_text('[[data.sources]]\nname = "no-such-dataset"\n', encoding="utf-8")
    assert "no-such-dataset" in refused(["update", str(run_dir), "--data", str(bad), "--tasks", "1"], run_dir)
    assert "--tasks 0" in refused(["update", str(run_dir), "--tasks", "0"], run_dir)
    unfinished = copy_run(half, tmp_path / "unfinished")
    os.remove(unfinished / "summary.json")
    assert "has not finished" in refused(["update", str(unfinished), "--tasks", "1"], unfinished)
    without = copy_run(half, tmp_path / "without-checkpoints")
    shutil.rmtree(without / "checkpoints")
    assert "no checkpoint to continue from" in refused(["update", str(without), "--tasks", "1"], without)
