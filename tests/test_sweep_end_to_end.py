"""End-to-end studies: the real ``fomo-host sweep`` with the local launcher on tiny runs, stopped and resumed, compared and reported."""

from __future__ import annotations

import json
import os
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
    directory = tmp_path_factory.mktemp("study")
    (directory / "spec.toml").write_text(small_spec_text.format(num_tasks=3, steps=4), encoding="utf-8")
    (directory / "study.toml").write_text(STUDY, encoding="utf-8")
    return directory / "study.toml"


@pytest.fixture(scope="module")
def uninterrupted(study: Path) -> Path:
    study_dir = study.parent / "uninterrupted"
    fomo("sweep", str(study), "--output", str(study_dir))
    return study_dir


def test_dry_run_lists_the_points_and_runs_nothing(study):
    result = fomo("sweep", str(study), "--dry-run")
    assert "2 points x 2 seeds = 4 runs" in result.stdout and "optimizer.lr=0.0005" in result.stdout
    assert not (study.parent / "runs").exists()


def test_a_sweep_stopped_mid_way_resumes_to_the_same_final_index(study, uninterrupted):
    study_dir = study.parent / "stopped"
    sweep = subprocess.Popen(
        [*CLI, "sweep", str(study), "--output", str(study_dir)], stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    deadline = time.monotonic() + 600
    # stop it once a run has finished and another is past its first checkpoint
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not (study_dir / "study.json").is_file():
            continue
        index = read_index(study_dir)
        running = [run for run in index.runs if run.status == "running"]
        if any(run.status == "finished" for run in index.runs) and any(
            (index.run_path(run) / "checkpoints").is_dir() and any((index.run_path(run) / "checkpoints").glob("*.json")) for run in running
        ):
            break
    sweep.send_signal(signal.SIGTERM)
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
    assert markdown[0].startswith("| point | paired seeds | Δ final GM |") and len(markdown) == 3
    unknown = fomo("compare", str(uninterrupted), "--against", "lr=1", check=False)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --against 'lr=1' is not a point of the study")
