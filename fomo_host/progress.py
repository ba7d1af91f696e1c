"""Progress display for long work: rich bars on a terminal, one plain line per phase elsewhere.

Once a run starts training, every bar also shows the whole run's progress and an
estimate of the time left (``run 40% ETA 3m12s``): the steps still to train times
the wall time per step so far, evaluations included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOSS_REFRESH_STEPS = 25


def duration(seconds: float) -> str:
    """``42s``, ``3m12s``, ``2h05m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class RunClock:
    """The whole run's progress in training steps, and the time left at the pace so far (evaluations included)."""

    def __init__(self, total_steps: int, clock: Callable[[], float] | None = None) -> None:
        self._now = clock or time.perf_counter
        self.total, self.done, self.started = total_steps, 0, self._now()

    def advance(self, steps: int = 1) -> None:
        self.done += steps

    def remaining_seconds(self) -> float | None:
        if self.done == 0 or self.total == 0:
            return None
        return (self._now() - self.started) / self.done * (self.total - self.done)

    def text(self) -> str:
        share = f"run {100 * self.done / self.total:.0f}%" if self.total else "run"
        left = self.remaining_seconds()
        return share if left is None else f"{share} ETA {duration(left)}"


class Reporter:
    """Shows progress on the main process; silent elsewhere and when ``enabled`` is false."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.interactive = self.console.is_terminal
        self.run_clock: RunClock | None = None

    def line(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)

    def track_run(self, total_steps: int) -> None:
        """From now on, bars show the whole run's progress over ``total_steps`` training steps and its ETA."""
        self.run_clock = RunClock(total_steps)

    @contextmanager
    def bar(self, description: str, total: int, run_steps: bool = False) -> Iterator[BarHandle]:
        """A progress bar over ``total`` units; a plain start/end line when not on a terminal.

        ``run_steps``: the units are training steps of the run that :meth:`track_run` follows.
        """
        clock = self.run_clock if run_steps else None
        if not self.enabled:
            yield BarHandle(None, None, clock=clock)
            return
        if not self.interactive:
            started = time.perf_counter()
            handle = BarHandle(None, None, plain=(self, description, total, started), clock=clock, shown=self.run_clock)
            yield handle
            note = f" ({handle.note})" if handle.note else ""
            self.line(f"{description}: {total} done in {time.perf_counter() - started:.1f}s{note}{handle.run_text()}")
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[run]}"),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, note="", run=self.run_clock.text() if self.run_clock else "")
            yield BarHandle(progress, task, clock=clock, shown=self.run_clock)


class BarHandle:
    """Advances a rich bar, or (off a terminal) prints a plain progress line every ``PLAIN_INTERVAL_S`` seconds."""

    PLAIN_INTERVAL_S = 30.0

    def __init__(
        self,
        progress: Progress | None,
        task: object,
        plain: tuple[Reporter, str, int, float] | None = None,
        clock: RunClock | None = None,
        shown: RunClock | None = None,
    ) -> None:
        self._progress = progress
        self._task = task
        self._plain = plain
        self._clock = clock
        self._shown = shown
        self._done = 0
        self._last_line = plain[3] if plain else 0.0
        self.note = ""

    def run_text(self) -> str:
        """`` | run 40% ETA 3m12s`` where a run is being followed, else nothing."""
        return f" | {self._shown.text()}" if self._shown is not None else ""

    def advance(self, amount: int = 1, note: str | None = None) -> None:
        if note is not None:
            self.note = note
        self._done += amount
        if self._clock is not None:
            self._clock.advance(amount)
        if self._plain is not None:
            now = time.perf_counter()
            if now - self._last_line >= self.PLAIN_INTERVAL_S:
                reporter, description, total, started = self._plain
                reporter.line(f"{description}: {self._done}/{total} after {now - started:.0f}s{self.run_text()}")
                self._last_line = now
        if self._progress is not None:
            fields = {"note": note} if note is not None else {}
            if self._shown is not None:
                fields["run"] = self._shown.text()
            self._progress.update(self._task, advance=amount, **fields)  # type: ignore[arg-type]
