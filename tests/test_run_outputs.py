"""What a finished run leaves and how the commands read it: --json on stdout alone, providers recorded, resume
without the spec, damaged results as one line, a closed pipe quiet."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fomo_host.cli import main
from fomo_host.results import RESULTS_FILE

pytestmark = pytest.mark.slow


def comparable(run_dir: Path) -> list[str]:
    lines = (run_dir / RESULTS_FILE).read_text().splitlines()
    return [json.dumps({k: v for k, v in json.loads(line).items() if k != "eval_seconds"}, sort_keys=True) for line in lines]


def error_line(captured: str) -> str:
    lines = [line for line in captured.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured, captured
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, small_spec_text) -> tuple[Path, str, str]:
    """One small run (2 tasks of 2 steps) through the in-process CLI with --json: (run dir, stdout, stderr)."""
    root = tmp_path_factory.mktemp("outputs")
    spec = root / "spec.toml"
    spec.write_text(small_spec_text.format(num_tasks=2, steps=2), encoding="utf-8")
    run_dir = root / "run"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["run", str(spec), "--output", str(run_dir), "--json", "--set", "run.name=outputs"])
    assert status == 0, err.getvalue()[-3000:]
    return run_dir, out.getvalue(), err.getvalue()


def test_run_json_prints_only_json_on_stdout(finished):
    run_dir, stdout, stderr = finished
    summary = json.loads(stdout)
    assert summary["tasks_done"] == 2 and "trajectory of run" in stderr and f"results: {run_dir / RESULTS_FILE}" in stderr


def test_records_and_summary_name_the_provider_of_every_component(finished):
    run_dir, stdout, _ = finished
    record = json.loads((run_dir / RESULTS_FILE).read_text().splitlines()[0])
    providers = record["providers"]
    assert providers["model"] == {
        "kind": "model",
        "name": "tiny-clip",
        "distribution": "fomo-openclip",
        "version": providers["model"]["version"],
    }
    assert providers["method"]["distribution"] == "fomo-tuning" and providers["evaluation.metrics.0"]["name"] == "zero-shot-accuracy"
    assert providers["optimizer"] == {"kind": "optimizer", "name": "adamw", "distribution": "fomo-optim", "version": "0.1.0"}
    assert json.loads(stdout)["providers"] == providers


def test_resume_without_the_spec_and_after_results_were_deleted_or_cut(finished, tmp_path, capsys):
    run_dir, _, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    expected = comparable(run_dir)
    # a resume of a finished run redoes nothing and rebuilds the results from the checkpoint
    (copy / RESULTS_FILE).write_text("\n".join((run_dir / RESULTS_FILE).read_text().splitlines()[:1]) + "\n")
    assert main(["run", "--resume", str(copy), "--quiet"]) == 0
    assert "held 1 of the checkpoint's 3 evaluations; rewrote them" in capsys.readouterr().err
    assert comparable(copy) == expected
    (copy / RESULTS_FILE).unlink()
    assert main(["run", "--resume", str(copy), "--quiet"]) == 0
    assert "was missing; rewrote its 3 evaluations" in capsys.readouterr().err
    assert comparable(copy) == expected
    # a different spec, given or by override, is refused before anything is built
    assert main(["run", "--resume", str(copy), "--set", "optimizer.lr=0.1"]) == 2
    assert "the spec differs from the one this run started with" in error_line(capsys.readouterr().err)


def test_a_run_killed_in_its_base_evaluation_restarts_from_the_beginning(finished, tmp_path, capsys):
    run_dir, _, _ = finished
    killed = tmp_path / "killed"
    shutil.copytree(run_dir, killed)
    # what a kill during the first evaluation leaves: the spec, the base weights, maybe a cut line, no checkpoint
    shutil.rmtree(killed / "checkpoints")
    (killed / "summary.json").unlink()
    (killed / RESULTS_FILE).write_text('{"task": -1, "st')
    assert main(["run", "--resume", str(killed)]) == 0
    assert "stopped before its first checkpoint; starting it from the beginning" in capsys.readouterr().err
    assert comparable(killed) == comparable(run_dir)


def test_compare_and_report_on_damaged_results_are_one_line(finished, tmp_path, capsys):
    run_dir, _, _ = finished
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    lines = (damaged / RESULTS_FILE).read_text().splitlines()
    (damaged / RESULTS_FILE).write_text("\n".join(lines[:1]) + "\n" + lines[1][:40])
    for argv in (["compare", str(damaged)], ["report", str(damaged), "--out", str(tmp_path / "report")]):
        assert main(argv) == 2
        assert f"{damaged / RESULTS_FILE} is damaged: line 2 is not a JSON record" in error_line(capsys.readouterr().err)
    (damaged / RESULTS_FILE).write_text("\n".join(lines) + "\n")
    (damaged / "summary.json").write_text("{not json")
    assert main(["compare", str(damaged)]) == 2
    assert "summary.json is damaged (not JSON)" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize("json_output", [True, False], ids=["--json", "table"])
def test_compare_into_a_pipe_the_reader_closed_is_quiet(finished, json_output):
    run_dir, _, _ = finished
    command = [sys.executable, "-m", "fomo_host.cli", "compare", str(run_dir), *(["--json"] if json_output else [])]
    # the reader is gone before the command writes (as `| head` that has read enough)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert stderr == "" and process.returncode == 1
