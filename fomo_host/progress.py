"""Progress display for long work: rich bars on a terminal, one plain line per phase elsewhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LOSS_REFRESH_STEPS = 25


class Reporter:
    """Shows progress on the main process; silent elsewhere and when ``enabled`` is false."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.interactive = self.console.is_terminal

    def line(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False, soft_wrap=True)

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[BarHandle]:
        """A progress bar over ``total`` units; a plain start/end line when not on a terminal."""
        if not self.enabled:
            yield BarHandle(None, None)
            return
        if not self.interactive:
            started = time.perf_counter()
            handle = BarHandle(None, None, plain=(self, description, total, started))
            yield handle
            note = f" ({handle.note})" if handle.note else ""
            self.line(f"{description}: {total} done in {time.perf_counter() - started:.1f}s{note}")
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        with progress:
            task = progress.add_task(description, total=total, note="")
            yield BarHandle(progress, task)


class BarHandle:
    """Advances a rich bar, or (off a terminal) prints a plain progress line every ``PLAIN_INTERVAL_S`` seconds."""

    PLAIN_INTERVAL_S = 30.0

    def __init__(self, progress: Progress | None, task: object, plain: tuple[Reporter, str, int, float] | None = None) -> None:
        self._progress = progress
        self._task = task
        self._plain = plain
        self._done = 0
        self._last_line = plain[3] if plain else 0.0
        self.note = ""

    def advance(self, amount: int = 1, note: str | None = None) -> None:
        if note is not None:
            self.note = note
        self._done += amount
        if self._plain is not None:
            now = time.perf_counter()
            if now - self._last_line >= self.PLAIN_INTERVAL_S:
                reporter, description, total, started = self._plain
                reporter.line(f"{description}: {self._done}/{total} after {now - started:.0f}s")
                self._last_line = now
        if self._progress is not None:
            kwargs = {"note": note} if note is not None else {}
            self._progress.update(self._task, advance=amount, **kwargs)  # type: ignore[arg-type]
