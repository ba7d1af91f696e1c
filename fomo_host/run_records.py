"""A run's evaluations as every reader gets them (``compare``, ``report``, ``export``, the Python API): ``results.jsonl``
checked against the run's own evidence, and rebuilt from the checkpoint where lines were lost, as ``--resume`` does.

``results.jsonl`` is appended line by line; a copy cut short, a disk that lost its last
blocks or a hand edit can drop whole lines and still leave valid JSON. A report from it
would show a shorter trajectory (another final GM, another ranking) without a word. The run
says elsewhere how far it went: ``summary.json`` (its evaluations and tasks), the newest
checkpoint's manifest (how many evaluations it holds), and the task numbers of the lines
themselves (one evaluation per task, from the base model's at -1). Where they disagree the
file is rebuilt from the newest intact checkpoint with :func:`fomo_host.results.restore_records`,
the same code a resume uses, and a note says so; where no checkpoint holds the missing
evaluations the run is refused in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import FomoError
from .locking import RunDirectoryLock, lock_holder
from .results import RESULTS_FILE, SUMMARY_FILE, read_records, restore_records
from .run_directory import CHECKPOINT_DIR, checkpoint_generations, explain
from .stored import Manifest, Summary, read_stored


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def evidence_problem(run_dir: Path, records: list[dict[str, Any]], summary: Summary | None) -> tuple[str, int] | None:
    """Why the records cannot be the run's whole history, and how many evaluations the run's evidence says it has;
    None when they agree."""
    expected: list[tuple[int, str]] = []
    if summary is not None:
        num_tasks = summary.run.num_tasks
        expected.append((num_tasks + 1, f"{SUMMARY_FILE} records {num_tasks} tasks ({num_tasks + 1} evaluations with the base model's)"))
        if summary.num_evaluations is not None:
            expected.append((summary.num_evaluations, f"{SUMMARY_FILE} records {summary.num_evaluations} evaluations"))
    generations = checkpoint_generations(run_dir / CHECKPOINT_DIR)
    if generations:
        try:
            manifest = read_stored(Manifest, run_dir / CHECKPOINT_DIR / f"{generations[0]:05d}.json")
        except FomoError:
            manifest = None  # a damaged manifest is the resume's business: it falls back to the previous checkpoint
        if manifest is not None and manifest.records > len(records):
            expected.append((manifest.records, f"its newest checkpoint holds {manifest.records} evaluations"))
    tasks = [record["task"] for record in records]
    wanted = list(range(-1, len(records) - 1))
    if tasks != wanted:
        line = next(i for i, (task, want) in enumerate(zip(tasks, wanted, strict=True)) if task != want)
        count = max([len(records), *(count for count, _ in expected)])
        return f"line {line + 1} is task {tasks[line] + 1}, where task {wanted[line] + 1} belongs (lines lost or repeated)", count
    for count, why in expected:
        if count != len(records):
            return f"it holds {len(records)} evaluations, but {why}", max(count for count, _ in expected)
    return None


def read_run_records(run_dir: Path, summary: Summary | None, warn: Callable[[str], None] = _stderr) -> list[dict[str, Any]]:
    """The run's evaluations, checked against its evidence; rebuilt from its checkpoint (with a note) where lines were lost.

    Raises :class:`FomoError` (one line) when the file was cut and cannot be rebuilt: no checkpoint holds the lost
    evaluations, the run is in use, or the directory cannot be written.
    """
    records = read_records(run_dir)
    found = evidence_problem(run_dir, records, summary)
    if found is None:
        return records
    problem, needed = found
    path = run_dir / RESULTS_FILE
    holder = lock_holder(run_dir)
    if holder is not None:
        raise FomoError(f"{path}: {problem}; the run is in use ({holder}); look again once it has ended")
    lock = RunDirectoryLock(run_dir)
    try:
        lock.acquire()
    except OSError as exc:
        raise FomoError(f"{path}: {problem}; cannot rebuild it from the checkpoint ({explain(exc)})") from None
    try:
        from .engine.checkpoint import Checkpoint

        try:
            checkpoint = Checkpoint.load(run_dir, warn=warn)
        except FomoError as exc:
            raise FomoError(f"{path}: {problem}; cannot rebuild it from the checkpoint: {exc}") from None
        held = list(checkpoint.records) if checkpoint is not None else []
        if len(held) < needed or evidence_problem(run_dir, held, summary) is not None:
            raise FomoError(
                f"{path}: {problem}; no intact checkpoint holds the lost evaluations, so the run's results cannot be trusted; run it again"
            )
        try:
            note = restore_records(run_dir, held)
        except OSError as exc:
            raise FomoError(f"{path}: {problem}; cannot rebuild it from the checkpoint ({explain(exc)})") from None
    finally:
        lock.release()
    warn(f"note: {note or f'{path}: rewrote its {len(held)} evaluations from the checkpoint'}; what showed it: {problem}")
    return held


def checked_records(run_dir: Path, warn: Callable[[str], None] = _stderr) -> list[dict[str, Any]]:
    """:func:`read_run_records` with the run's own ``summary.json`` (validated) as the evidence, where it has one."""
    path = run_dir / SUMMARY_FILE
    return read_run_records(run_dir, read_stored(Summary, path) if path.is_file() else None, warn)
