"""End-to-end studies: the real ``fomo-host sweep`` with the local launcher on tiny runs, stopped and resumed, compared and reported."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fomo_host.locking import lock_holder
from fomo_host.study.index import read_index

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "fomo_host.cli"]
STUDY = """
base = "spec.toml"
seeds = [0, 1]
[grid]
"optimizer.lr" = [5e-4, 1e-3]
[launcher]
name = "local"
params = { max_parallel = 2, threads_per_run = 1 }
"""
STABLE_FIELDS = ("key", "run_dir", "group", "label", "variant", "grid", "seed", "overrides", "fingerprint", "status", "error")


def fomo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=900, env=os.environ.copy())
    if check and result.returncode != 0:
        raise AssertionError(f"fomo-host {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def comparable(run_dir: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "eval_seconds"} for line in (run_dir / "results.jsonl").read_text().splitlines()
    ]


def stable(study_dir: Path) -> list[dict]:
    """The index without what differs from one sweep to another (times, process ids, attempts)."""
    return [{field: getattr(run, field) for field in STABLE_FIELDS} for run in read_index(study_dir).runs]


@pytest.fixture(scope="module")
def study(tmp_path_factory, small_spec_text) -> Path:
    # in the worker's base folder, the same on every set-up: pytest tears a module's fixtures down whenever a test of
    # another module runs in between on the same worker, and the uninterrupted sweep below is then not run again
    directory = tmp_path_factory.getbasetemp() / "sweep-study"
    directory.mkdir(exist_ok=True)
    (directory / "spec.toml").write_text(small_spec_text.format(num_tasks=3, steps=4), encoding="utf-8")
    (directory / "study.toml").write_text(STUDY, encoding="utf-8")
    return directory / "study.toml"


@pytest.fixture(scope="module")
def uninterrupted(study: Path) -> Path:
    study_dir = study.parent / "uninterrupted"
    if not (study.parent / "uninterrupted.done").is_file():
        shutil.rmtree(study_dir, ignore_errors=True)
        fomo("sweep", str(study), "--output", str(study_dir))
        (study.parent / "uninterrupted.done").touch()
    return study_dir


def test_dry_run_lists_the_points_and_runs_nothing(study):
    result = fomo("sweep", str(study), "--dry-run")
    assert "2 points x 2 seeds = 4 runs" in result.stdout and "optimizer.lr=0.0005" in result.stdout
    assert not (study.parent / "runs").exists()


def pending_signals(pid: int) -> int:
    """The process-directed signals waiting for ``pid`` (a bit per signal, as Linux shows them in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("ShdPnd:")), 16)


def wait_until_stopped(pid: int, timeout_s: float = 60.0) -> bool:
    """Wait until every thread of ``pid`` has stopped (SIGSTOP takes effect only when each is next scheduled); False if it ended.

    Only then does a signal sent to it wait, visibly, until it is woken: a thread not yet stopped would take it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            states = {(task / "stat").read_text().rpartition(")")[2].split()[0] for task in Path(f"/proc/{pid}/task").iterdir()}
        except (FileNotFoundError, ProcessLookupError):
            return False
        if states & {"Z", "X"}:
            return False
        if states == {"T"}:
            return True
        time.sleep(0.01)
    raise AssertionError(f"run {pid} did not stop within {timeout_s:.0f} s of SIGSTOP")


def freeze_a_run_mid_way(study_dir: Path, deadline: float) -> int:
    """Wait until a run has finished and another, still running, has a checkpoint; freeze that one (SIGSTOP) and return its pid.

    Frozen, it cannot finish between being chosen and the sweep's stop reaching it, however fast the machine.
    """
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not (study_dir / "study.json").is_file():
            continue
        index = read_index(study_dir)
        if not any(run.status == "finished" for run in index.runs):
            continue
        for run in index.runs:
            path = index.run_path(run)
            if run.status != "running" or not run.job or not any((path / "checkpoints").glob("*.json")):
                continue
            pid = int(run.job.removeprefix("pid "))
            try:
                os.killpg(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue  # it ended meanwhile
            if wait_until_stopped(pid) and not (path / "summary.json").exists():
                return pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)  # it had finished its work before it was frozen: let it end
    raise AssertionError("no run was mid-way through the study before the deadline")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads pending signals from /proc")
def test_a_sweep_stopped_mid_way_resumes_to_the_same_final_index(study, uninterrupted):
    study_dir = study.parent / "stopped"
    sweep = subprocess.Popen(
        [*CLI, "sweep", str(study), "--output", str(study_dir)], stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    frozen = freeze_a_run_mid_way(study_dir, time.monotonic() + 600)
    sweep.send_signal(signal.SIGTERM)
    # the sweep passes the stop on to its runs as SIGINT; the frozen run wakes only once that is waiting for it
    deadline = time.monotonic() + 60
    try:
        while not pending_signals(frozen) & (1 << (signal.SIGINT - 1)):
            assert time.monotonic() < deadline, "the stopped sweep never passed the stop on to its runs"
            time.sleep(0.05)
    finally:
        os.killpg(frozen, signal.SIGCONT)
    stderr = sweep.communicate(timeout=120)[1]
    assert sweep.returncode == 130, stderr
    assert f"fomo-host sweep --resume {study_dir}" in stderr
    stopped = read_index(study_dir)
    statuses = [run.status for run in stopped.runs]
    assert "running" not in statuses and "finished" in statuses and "interrupted" in statuses, statuses
    assert all(lock_holder(stopped.run_path(run)) is None for run in stopped.runs), "a run outlived the stopped sweep"

    resumed = fomo("sweep", "--resume", str(study_dir))
    assert "(resuming)" in resumed.stderr  # an interrupted run went on from its checkpoint, not from scratch
    assert stable(study_dir) == stable(uninterrupted)
    for run in read_index(study_dir).runs:
        assert comparable(study_dir / run.run_dir) == comparable(uninterrupted / run.run_dir), run.key
    again = fomo("sweep", "--resume", str(study_dir))
    assert "0 to run" in again.stderr


def test_compare_and_report_a_study_by_point(uninterrupted, tmp_path):
    markdown = fomo("compare", str(uninterrupted), "--markdown").stdout.strip().splitlines()
    assert markdown[0].startswith("| # | point | seeds | final GM |") and len(markdown) == 4
    assert {row.split(" | ")[1] for row in markdown[2:]} == {"lr=0.0005", "lr=0.001"}
    assert all(" ± " in row and row.split(" | ")[2] == "2" for row in markdown[2:])
    rows = json.loads(fomo("compare", str(uninterrupted), "--json").stdout)
    index = read_index(uninterrupted)
    for row in rows:
        finals = [
            json.loads((uninterrupted / run.run_dir / "summary.json").read_text())["GM"]["final"]
            for run in index.runs
            if run.label == row["point"]
        ]
        assert row["GM"]["n"] == 2 and row["GM"]["mean"] == pytest.approx(sum(finals) / 2)
    assert rows[0]["GM"]["mean"] >= rows[1]["GM"]["mean"]
    result = fomo("report", str(uninterrupted), "--out", str(tmp_path / "report"))
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Comparison of the study's points" in page and "lr=0.0005" in page and "±" in page
    assert (tmp_path / "report" / "plane.png").is_file() and "plane.png" in result.stdout


def test_compare_against_a_point_gives_the_seed_by_seed_differences(uninterrupted):
    index = read_index(uninterrupted)

    def final(label: str, seed: int, key: str) -> float:
        run = next(run for run in index.runs if run.label == label and run.seed == seed)
        return json.loads((uninterrupted / run.run_dir / "summary.json").read_text())[key]["final"]

    rows = json.loads(fomo("compare", str(uninterrupted), "--against", "lr=0.001", "--json").stdout)
    assert [row["point"] for row in rows] == ["lr=0.0005"]
    for key in ("GM", "A_KA", "A_ZS"):
        differences = [final("lr=0.0005", seed, key) - final("lr=0.001", seed, key) for seed in (0, 1)]
        assert rows[0][key]["n"] == 2 and rows[0][key]["mean"] == pytest.approx(sum(differences) / 2)
    markdown = fomo("compare", str(uninterrupted), "--against", "lr=0.001", "--markdown").stdout.splitlines()
    # the header says how the stars are corrected for the number of comparisons (8 columns x 1 point, all shown)
    assert markdown[0].startswith("| point (* Holm-corrected over 8 comparisons, p < 0.05) | paired seeds | Δ final GM |"), markdown[0]
    assert markdown[0].count("Δ") == 8
    assert len(markdown) == 3
    assert rows[0]["GM"]["p_adjusted"] >= rows[0]["GM"]["p"]
    none = json.loads(fomo("compare", str(uninterrupted), "--against", "lr=0.001", "--correction", "none", "--json").stdout)
    assert none[0]["GM"]["p_adjusted"] == none[0]["GM"]["p"]
    not_a_search = fomo("compare", str(uninterrupted), "--best", check=False)
    assert not_a_search.returncode == 2 and "--best lists a search study's best trials" in not_a_search.stderr
    unknown = fomo("compare", str(uninterrupted), "--against", "lr=1", check=False)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --against 'lr=1' is not a point of the study")


def test_findings_judges_the_study_files_claims_and_writes_a_page(uninterrupted, tmp_path):
    study_dir = tmp_path / "study"
    shutil.copytree(uninterrupted, study_dir)
    copy = study_dir / "study.toml"
    copy.write_text(
        copy.read_text()
        + '\n[finding]\ntitle = "Learning rates"\npaper = "a higher lr learns more"\nagainst = "lr=0.0005"\n'
        + 'claims = [{ point = "lr=0.001", metric = "A_KA.final", direction = "higher" }]\n'
    )
    index = read_index(study_dir)

    def final(label: str, seed: int) -> float:
        run = next(run for run in index.runs if run.label == label and run.seed == seed)
        return json.loads((study_dir / run.run_dir / "summary.json").read_text())["A_KA"]["final"]

    [result] = json.loads(fomo("findings", str(study_dir), "--json").stdout)
    [claim] = result["claims"]
    assert claim["difference"] == pytest.approx(sum(final("lr=0.001", s) - final("lr=0.0005", s) for s in (0, 1)) / 2)
    assert claim["seeds"] == 2 and result["runs"] == 4 and result["seeds"] == [0, 1]
    assert result["verdict"] == {"holds": "reproduced", "contradicted": "contradicted", "not shown": "not shown"}[claim["state"]]
    written = fomo("findings", str(study_dir), "--out", str(tmp_path / "out")).stdout
    page = Path(written.split("findings: ")[1].split(";")[0])
    text = page.read_text()
    # and a row per finding for a README, linked to its section of the page and to its figure
    out = tmp_path / "out"
    assert f"| [Learning rates]({out}/findings.md#learning-rates) | **{result['verdict']}** |" in written
    assert f"| [study.png]({out}/study.png) | `fomo-host sweep " in written
    assert "| Learning rates" in text or "[Learning rates]" in text
    assert f"fomo-host compare {study_dir} --against lr=0.0005 --markdown" in text and "(study.png)" in text
    assert (tmp_path / "out" / "study.png").is_file()
    fomo("findings", str(study_dir), str(study_dir), "--out", str(tmp_path / "twice"))  # two studies of one name: a figure each
    assert (tmp_path / "twice" / "study.png").is_file() and (tmp_path / "twice" / "study-2.png").is_file()
    refused = fomo("findings", str(uninterrupted), check=False)
    assert refused.returncode == 2 and "has no [finding] table" in refused.stderr
    # a claimed point with a run not finished: refused, or judged on the seeds that finished with --partial
    from fomo_host.study.index import update_run

    update_run(study_dir, next(run.key for run in index.runs if run.label == "lr=0.001" and run.seed == 1), status="failed")
    unfinished = fomo("findings", str(study_dir), check=False)
    assert unfinished.returncode == 2 and "runs not finished ('lr=0.001' 1 of 2)" in unfinished.stderr
    [partial] = json.loads(fomo("findings", str(study_dir), "--partial", "--json").stdout)
    assert partial["runs"] == 3 and partial["planned"] == 4 and partial["claims"][0]["seeds"] == 1
    brief = fomo("findings", str(study_dir), "--partial", "--out", str(tmp_path / "partial")).stdout
    assert f"| **{partial['verdict']}**, partial: 3 of 4 runs |" in brief  # a README's row says it is partial


def test_reuse_copies_the_runs_another_study_finished_with_the_same_spec(uninterrupted, study, tmp_path):
    # the same base spec and one of the finished study's learning rates: its two runs are copied, none is run again
    other = study.parent / "reusing.toml"
    other.write_text(STUDY.replace('"optimizer.lr" = [5e-4, 1e-3]', '"optimizer.lr" = [5e-4]'), encoding="utf-8")
    study_dir = tmp_path / "reusing"
    # a dry run says which runs the copy would cover and how many are left to run
    wider = study.parent / "wider.toml"
    wider.write_text(STUDY.replace('"optimizer.lr" = [5e-4, 1e-3]', '"optimizer.lr" = [5e-4, 2e-3]'), encoding="utf-8")
    planned = fomo("sweep", str(wider), "--dry-run", "--reuse", str(uninterrupted)).stdout
    assert "--reuse: 2 of 4 runs would be copied, 2 to run" in planned and "0: reused, 1: reused" in planned, planned
    assert "0: new, 1: new" in planned and not (tmp_path / "reusing").exists()
    swept = fomo("sweep", str(other), "--output", str(study_dir), "--reuse", str(uninterrupted))
    assert "reused 2 finished runs of" in swept.stdout + swept.stderr and "started" not in swept.stdout + swept.stderr
    runs = read_index(study_dir).runs
    assert all(run.status == "finished" for run in runs)
    reused = [run for run in runs if run.reused_from]
    assert sorted((run.label, run.seed) for run in reused) == [("lr=0.0005", 0), ("lr=0.0005", 1)]
    donors = {(run.label, run.seed): run for run in read_index(uninterrupted).runs}
    for run in reused:
        donor = donors[(run.label, run.seed)]
        assert run.fingerprint == donor.fingerprint and run.reused_from == str((uninterrupted / donor.run_dir).resolve())
        assert comparable(study_dir / run.run_dir) == comparable(uninterrupted / donor.run_dir)
    refused = fomo("sweep", str(other), "--output", str(tmp_path / "x"), "--reuse", str(tmp_path), check=False)
    assert refused.returncode == 2 and "not a study directory" in refused.stderr
    # a finished run that a process holds (fomo-host update continuing it) is not copied: it runs here instead
    import fcntl

    from fomo_host.locking import LOCK_FILE

    held = donors[("lr=0.0005", 1)]
    with open(uninterrupted / held.run_dir / LOCK_FILE, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        swept = fomo("sweep", str(other), "--output", str(tmp_path / "held"), "--reuse", str(uninterrupted))
    assert "is in use" in swept.stdout + swept.stderr and "reused 1 finished run of" in swept.stdout + swept.stderr
    runs = {run.seed: run for run in read_index(tmp_path / "held").runs}
    assert runs[0].reused_from and not runs[1].reused_from and runs[1].status == "finished"
