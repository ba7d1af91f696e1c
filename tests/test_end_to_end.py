"""End-to-end: the real ``fomo-host`` CLI on the tiny model and the embedded data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fomo_host.run_request import free_port

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "fomo_host.cli"]


def fomo(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if check and result.returncode != 0:
        raise AssertionError(f"fomo-host {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def comparable(run_dir: Path) -> list[dict]:
    """Everything a run computed, without wall-clock timings."""
    return [{k: v for k, v in r.items() if k != "eval_seconds"} for r in records(run_dir)]


def test_run_writes_results_summary_and_resolved_spec(small_spec, tmp_path):
    spec = small_spec(num_tasks=3, steps=4)
    run_dir = tmp_path / "run"
    result = fomo("run", str(spec), "--output", str(run_dir), "--set", "run.name=e2e-run")
    assert "trajectory of run" in result.stdout and "A_KA" in result.stdout
    lines = records(run_dir)
    assert [r["task"] for r in lines] == [-1, 0, 1, 2]
    assert [r["step"] for r in lines] == [0, 4, 8, 12] and lines[-1]["samples_seen"] == 12 * 32
    assert [r["subset_fraction"] for r in lines] == [1.0, 0.5, 0.5, 1.0]  # first and last use the full sets
    final = lines[-1]
    assert set(final["scores"]) == {"synthetic-letters", "synthetic-arrows", "synthetic-relations", "synthetic-shapes-outline"}
    assert "retrieval-recall/recall@5" in final["metrics"]["synthetic-relations"]
    assert "zero-shot-accuracy/top1" in final["metrics"]["synthetic-letters"]
    assert final["A_KA"] == pytest.approx(
        (final["scores"]["synthetic-letters"] + final["scores"]["synthetic-arrows"] + final["scores"]["synthetic-relations"]) / 3
    )
    assert final["GM"] == pytest.approx((final["A_KA"] * final["A_ZS"]) ** 0.5)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["A_KA"]["final"] == final["A_KA"] and summary["tasks_done"] == 3
    assert 'name = "e2e-run"' in (run_dir / "spec.toml").read_text()
    # the resolved spec is itself a valid spec
    fomo("validate", str(run_dir / "spec.toml"), "--schema-only")


def test_validate_builds_the_stream_without_training(small_spec):
    result = fomo("validate", str(small_spec(num_tasks=3)))
    assert "valid" in result.stdout and "3 tasks x 4 steps" in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=-1", "optimizer.lr: Input should be greater than 0"),
        ("optimzer.lr=1", "optimzer: unknown key"),
        ("method.name=lora2", "unknown method 'lora2'"),
        ("data.sources.0.params.train_per_class=0", "data.sources.0.params.train_per_class: Input should be greater than or equal to 1"),
        ("data.num_tasks=500", "data.num_tasks is 500 but the stream has only"),
        ("model.params.image_size=30", "image_size 30 is not a multiple of patch_size 8"),
        ("optimizer.lr", "expected KEY.PATH=VALUE"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(small_spec, tmp_path, override, message):
    result = fomo("run", str(small_spec()), "--output", str(tmp_path / "never"), "--set", override, check=False)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "never").exists()  # rejected before any training


def test_missing_spec_file_and_occupied_output_are_clear_errors(small_spec, tmp_path):
    result = fomo("run", str(tmp_path / "nope.toml"), check=False)
    assert result.returncode == 2 and "no such spec file" in result.stderr
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("")
    result = fomo("run", str(small_spec()), "--output", str(occupied), check=False)
    assert result.returncode == 2 and "--resume" in result.stderr


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(small_spec, tmp_path):
    spec = small_spec(num_tasks=4, steps=6)
    uninterrupted = tmp_path / "uninterrupted"
    fomo("run", str(spec), "--output", str(uninterrupted))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen([*CLI, "run", str(spec), "--output", str(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    results = interrupted / "results.jsonl"
    while time.time() < deadline and process.poll() is None:
        if results.is_file() and len(results.read_text().splitlines()) >= 3:  # base + two tasks evaluated
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; make the stream longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(records(interrupted)) < 5

    fomo("run", str(spec), "--resume", str(interrupted))
    assert comparable(interrupted) == comparable(uninterrupted)
    summaries = [json.loads((run / "summary.json").read_text()) for run in (interrupted, uninterrupted)]
    assert summaries[0]["A_KA"] == summaries[1]["A_KA"]


def test_resume_refuses_a_different_spec(small_spec, tmp_path):
    spec = small_spec(num_tasks=2, steps=2)
    run_dir = tmp_path / "run"
    fomo("run", str(spec), "--output", str(run_dir))
    result = fomo("run", str(spec), "--resume", str(run_dir), "--set", "optimizer.lr=1e-3", check=False)
    assert result.returncode == 2 and "spec differs" in result.stderr


@pytest.mark.multiprocess
@pytest.mark.representative
def test_two_process_accelerate_run_matches_one_process(small_spec, tmp_path):
    spec = small_spec(num_tasks=2, steps=3)
    single = tmp_path / "single"
    fomo("run", str(spec), "--output", str(single))
    double = tmp_path / "double"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
        "-m", "fomo_host.cli", "run", str(spec), "--output", str(double),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device cpu x2" in result.stderr
    # the same global batches, the loss over the gathered batch: equal up to float reduction order
    for one, two in zip(records(single), records(double), strict=True):
        assert two["task"] == one["task"]
        assert two["A_KA"] == pytest.approx(one["A_KA"], abs=0.02)
        assert two["A_ZS"] == pytest.approx(one["A_ZS"], abs=0.02)
        if "train_loss" in one:
            assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-3)
