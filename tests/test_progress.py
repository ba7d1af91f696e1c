"""The progress display: the whole run's ETA on every bar, and a warm start from the cache shown as one line, not a bar."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fomo_host.progress import Reporter, RunClock, duration


def test_the_run_clock_extrapolates_the_pace_so_far():
    now = [100.0]
    clock = RunClock(total_steps=400, clock=lambda: now[0])
    assert clock.text() == "run 0%" and clock.remaining_seconds() is None
    now[0] += 30.0  # 100 steps (and whatever evaluated between them) in 30 s
    clock.advance(100)
    assert clock.remaining_seconds() == pytest.approx(90.0)
    assert clock.text() == "run 25% ETA 1m30s"
    assert [duration(s) for s in (42, 192, 7500)] == ["42s", "3m12s", "2h05m"]


def plain_reporter() -> tuple[Reporter, io.StringIO]:
    reporter = Reporter()
    buffer = io.StringIO()
    reporter.console = Console(file=buffer, force_terminal=False, width=200)
    reporter.interactive = False
    return reporter, buffer


def test_training_bars_advance_the_run_and_every_bar_shows_its_eta():
    reporter, buffer = plain_reporter()
    reporter.track_run(total_steps=4)
    with reporter.bar("task 1/2: training", 2, run_steps=True) as bar:
        bar.advance()
        bar.advance()
    with reporter.bar("task 1/2: evaluating", 3) as bar:
        bar.advance(3)  # evaluation is not training: the run stays at half
    assert reporter.run_clock is not None and reporter.run_clock.done == 2
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("task 1/2: training: 2 done in") and "| run 50% ETA " in lines[0]
    assert "| run 50% ETA " in lines[1]


def test_a_terminal_bar_carries_the_run_column():
    reporter = Reporter()
    reporter.console = Console(file=io.StringIO(), force_terminal=True, width=160)
    reporter.interactive = True
    reporter.track_run(total_steps=10)
    with reporter.bar("task 1/1: training", 10, run_steps=True) as bar:
        for _ in range(10):
            bar.advance()
        assert bar._progress is not None
        (task,) = bar._progress.tasks
        assert task.fields["run"].startswith("run 100%")


@pytest.mark.slow
def test_a_cached_warm_start_is_one_line_without_a_bar(small_spec):
    from fomo_host.engine.run import prepare
    from fomo_host.plugins import load_plugins
    from fomo_host.spec_loading import load_spec

    host = load_plugins()
    spec = load_spec(small_spec(), registry=host.registry)
    prepare(host, spec, plain_reporter()[0])  # trains the warm start, or finds it from an earlier test
    reporter, buffer = plain_reporter()
    prepare(host, spec, reporter)
    shown = buffer.getvalue()
    assert "warm start: base model loaded from cache" in shown and "pretraining the base model" not in shown
