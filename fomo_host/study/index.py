"""The study index, ``STUDY_DIR/study.json``: every run of a study, its point, its status and where it is.

Format (version 1), one JSON object::

    {
      "format": 1,
      "study": {"name": "methods", "description": "...", "file": "/abs/specs/studies/methods.toml", "base": "/abs/specs/quickstart.toml",
                "sets": ["budget.samples_per_task=3840"],      # what fomo-host sweep --set added
                "common": ["budget.samples_per_task=3840"],    # the overrides every point starts with
                "seeds": [0, 1, 2], "created": "2026-11-27T18:00:00"},
      "runs": [
        {"key": "03-lora/seed-1",            # unique; also the run directory under runs/
         "run_dir": "runs/03-lora/seed-1",  # relative to the study directory
         "group": 3, "label": "lora",       # runs that differ only by seed share group and label
         "variant": "lora", "grid": {},      # the variant's label (or null) and the grid values
         "seed": 1,
         "overrides": ["method={ name = \\"lora\\" }", "run.seed=1"],   # fomo-host run --set, in order
         "fingerprint": "9f2c...",           # of the resolved spec (what determines the results)
         "status": "finished",              # pending | running | finished | failed | interrupted
         "job": "pid 4242",                  # where the launcher ran it (its last attempt)
         "attempts": 1, "started": "...", "ended": "...",
         "error": null}                      # for a failed run: why, one line
      ]
    }

Every change is a locked read-modify-write (an OS file lock on ``study.json.lock``)
and an atomic replace, so runs finishing at the same moment, in threads or in
processes, never lose each other's updates and a reader never sees half a file.
:func:`read_index` is the public reader.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FomoError
from ..stored import Index, read_json, validated

INDEX_FILE = "study.json"
FORMAT_VERSION = 1
STATUSES = ("pending", "running", "finished", "failed", "interrupted", "pruned")
"""What ``status`` may be (:class:`fomo_host.stored.IndexRun` checks it when the index is read); ``pruned``: a search
trial's run its pruner stopped after ``tasks_reached`` tasks (see :mod:`fomo_host.study.search`)."""
RUNS_FOLDER = "runs"
LOGS_FOLDER = "logs"


@dataclass
class StudyRun:
    """One run of a study as the index records it."""

    key: str
    run_dir: str
    group: int
    label: str
    variant: str | None
    grid: dict[str, Any]
    seed: int
    overrides: list[str]
    fingerprint: str
    status: str = "pending"
    job: str | None = None
    attempts: int = 0
    started: str | None = None
    ended: str | None = None
    error: str | None = None
    trial: int | None = None
    """The Optuna trial number of a search study's run (per variant); None in a grid study."""
    tasks_reached: int | None = None
    """Tasks a search trial's run finished (all of them unless it was pruned)."""
    reused_from: str | None = None
    """The run directory this finished run was copied from (``sweep --reuse``): another study's run of the same spec."""


@dataclass
class StudyIndex:
    """A study directory's index: the study's settings and its runs."""

    study_dir: Path
    study: dict[str, Any]
    runs: list[StudyRun] = field(default_factory=list)

    def run_path(self, run: StudyRun) -> Path:
        return self.study_dir / run.run_dir

    def run(self, key: str) -> StudyRun:
        for run in self.runs:
            if run.key == key:
                return run
        raise KeyError(key)

    def groups(self) -> dict[int, list[StudyRun]]:
        """Runs by group (runs that differ only by seed), in the study's order."""
        grouped: dict[int, list[StudyRun]] = {}
        for run in sorted(self.runs, key=lambda r: (r.group, r.seed)):
            grouped.setdefault(run.group, []).append(run)
        return grouped

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for run in self.runs if run.status == status) for status in STATUSES}

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "study": self.study, "runs": [asdict(run) for run in self.runs]}


def index_path(study_dir: Path) -> Path:
    return Path(study_dir) / INDEX_FILE


def is_study_dir(path: Path) -> bool:
    return index_path(path).is_file()


def read_index(study_dir: Path | str) -> StudyIndex:
    """Read a study directory's index (raises :class:`FomoError` with one line if it is not a study directory)."""
    study_dir = Path(study_dir)
    path = index_path(study_dir)
    if not path.is_file():
        raise FomoError(f"{study_dir}: not a study directory (no {INDEX_FILE}); fomo-host sweep makes one")
    index = checked_index(read_json(path), path)
    runs = [StudyRun(**run.model_dump(include=set(StudyRun.__dataclass_fields__))) for run in index.runs]
    return StudyIndex(study_dir, index.study.model_dump(), runs)


def checked_index(content: Any, path: Path) -> Index:
    """The index's content validated: one line naming the file and the key where it is not a study index."""
    if isinstance(content, dict) and "format" in content and content["format"] != FORMAT_VERSION:
        raise FomoError(f"{path}: index format {content['format']!r}; this fomo-host reads format {FORMAT_VERSION}")
    return validated(Index, content, path)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def write_index(index: StudyIndex) -> None:
    """Write the whole index (a new study, or a resumed one with points added)."""
    with _locked(index.study_dir):
        _write(index.study_dir, index.to_json())


def update_run(study_dir: Path, key: str, **fields: Any) -> StudyRun:
    """Change some fields of one run under the lock, from the file as it is now; returns the run as written."""
    unknown = set(fields) - set(StudyRun.__dataclass_fields__)
    if unknown:
        raise ValueError(f"not fields of a study run: {sorted(unknown)}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"status {fields['status']!r} is not one of {STATUSES}")
    with _locked(study_dir):
        path = index_path(study_dir)
        content = read_json(path)
        checked_index(content, path)
        entry = next((entry for entry in content["runs"] if entry["key"] == key), None)
        if entry is None:
            raise KeyError(f"{study_dir}: no run {key!r} in the index")
        entry.update(fields)
        _write(study_dir, content)
        names = set(StudyRun.__dataclass_fields__)
        return StudyRun(**{name: value for name, value in entry.items() if name in names})


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def _locked(study_dir: Path) -> Iterator[None]:
    """Exclusive access to the index across threads (a lock per directory) and processes (flock on a lock file)."""
    resolved = str(Path(study_dir).resolve())
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(resolved, threading.Lock())
    with thread_lock, open(Path(study_dir) / (INDEX_FILE + ".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write(study_dir: Path, content: Mapping[str, Any]) -> None:
    path = index_path(study_dir)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(content, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        # a write that failed midway (a full disk) leaves the index as it was and no temporary file
        temporary.unlink(missing_ok=True)
