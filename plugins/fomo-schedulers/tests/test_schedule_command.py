"""``fomo-host schedule``: the lr of every step of the stream, from the spec alone."""

import csv
import io
import json
import math

import pytest

from fomo_host.testing import run_cli

SPEC = """
[run]
batch_size = 32

[model]
name = "a-model-whose-plugin-need-not-be-installed"

[[data.sources]]
name = "some-dataset"

[data]
num_tasks = 3

[budget]
samples_per_task = 640

[optimizer]
lr = 0.002

[scheduler]
name = "rsqrt"
params = { warmup = 0.1, cooldown = 0.1, min_factor = 0.0 }
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_has_one_row_per_step_of_every_task(spec_file, capsys):
    assert run_cli("schedule", str(spec_file), "--csv") == 0
    rows = read_csv(capsys.readouterr().out)
    assert list(rows[0]) == ["task", "step", "global_step", "lr"]
    steps = 640 // 32  # samples_per_task / batch_size
    assert len(rows) == 3 * steps
    assert [int(r["global_step"]) for r in rows] == list(range(1, 3 * steps + 1))  # counted from 1, as logs/steps.csv
    assert [int(r["task"]) for r in rows[::steps]] == [1, 2, 3]
    # lr = optimizer.lr x factor at the 0-based task and step; rsqrt with S = 20, W = C = 2, lr_min = 0
    by_step = {(int(r["task"]) - 1, int(r["step"]) - 1): float(r["lr"]) for r in rows}
    assert by_step[(1, 0)] == pytest.approx(0.002 * 0.5)
    assert by_step[(1, 8)] == pytest.approx(0.002 * math.sqrt(2 / 8))
    assert by_step[(2, 19)] == 0.0


def test_overrides_choose_the_scheduler(spec_file, capsys):
    overrides = ["--set", "scheduler.name=rsqrt-continued", "--set", "budget.samples_per_task=320"]
    assert run_cli("schedule", str(spec_file), "--csv", *overrides) == 0
    rows = read_csv(capsys.readouterr().out)
    assert len(rows) == 3 * 10
    peaks = [max(float(r["lr"]) for r in rows if int(r["task"]) == task) for task in (1, 2, 3)]
    assert peaks[0] > peaks[1] > peaks[2]


def test_summary_table_and_plot(spec_file, tmp_path, capsys):
    plot = tmp_path / "figures" / "lr.png"
    assert run_cli("schedule", str(spec_file), "--plot", str(plot)) == 0
    out = capsys.readouterr().out
    assert "rsqrt" in out and "peak lr" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 5000


def test_invalid_scheduler_params_are_one_line(spec_file, capsys):
    assert run_cli("schedule", str(spec_file), "--set", "scheduler.params.warmup=2.5") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: scheduler.params.warmup:") and "\n" not in err


def test_unknown_scheduler_lists_the_available_ones(spec_file, capsys):
    assert run_cli("schedule", str(spec_file), "--set", "scheduler.name=rsqrt2") == 2
    assert "available:" in capsys.readouterr().err


def test_a_budget_in_memory_adjusted_flops_uses_the_measured_steps(tmp_path, capsys, monkeypatch):
    pytest.importorskip("fomo_openclip")
    pytest.importorskip("fomo_tuning")
    monkeypatch.setenv("FOMO_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "maf.toml"
    text = SPEC.replace("a-model-whose-plugin-need-not-be-installed", "tiny-clip").replace("samples_per_task = 640", "maf_per_task = 2000")
    path.write_text(text, encoding="utf-8")
    assert run_cli("budget", str(path), "--json") == 0
    steps = json.loads(capsys.readouterr().out)[0]["steps_per_task"]
    assert run_cli("schedule", str(path), "--csv") == 0
    rows = read_csv(capsys.readouterr().out)
    assert len(rows) == 3 * steps
