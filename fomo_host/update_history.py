"""A run directory's update history: ``updates.jsonl`` and the spec of every update under ``updates/N/``.

Layout::

    spec.toml               the spec the run (or its latest update) trains with
    updates/0/spec.toml     the spec the run started with (kept from its first update on)
    updates/N/spec.toml     the spec of update N (N = 1, 2, ...)
    updates/N/data.toml     the data file update N was given
    updates.jsonl           one line per update: its number, status, tasks, new data, spec fingerprints, release

An update is written "started" before it trains and "finished" once its release is
written; a started one is the update an interrupted run continues.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .results import read_json_lines, write_text_atomic

UPDATES_FILE = "updates.jsonl"
UPDATES_DIR = "updates"


def read_updates(run_dir: Path) -> list[dict[str, Any]]:
    """The run's updates, oldest first (none for a run never updated)."""
    return read_json_lines(run_dir / UPDATES_FILE, ("update", "status"), "an update record")


def write_updates(run_dir: Path, entries: list[dict[str, Any]]) -> None:
    write_text_atomic(run_dir / UPDATES_FILE, "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries))


def pending_update(run_dir: Path) -> dict[str, Any] | None:
    """The update that was started and has not finished (an interrupted one), if any."""
    entries = read_updates(run_dir)
    return entries[-1] if entries and entries[-1]["status"] == "started" else None


def continues_update(run_dir: Path, checkpoint_fingerprint: str, spec_fingerprint: str) -> bool:
    """Whether a checkpoint written under the spec before an update may be continued with the update's spec."""
    pending = pending_update(run_dir)
    return pending is not None and pending["from_fingerprint"] == checkpoint_fingerprint and pending["spec_fingerprint"] == spec_fingerprint


def update_folder(run_dir: Path, number: int) -> Path:
    return run_dir / UPDATES_DIR / str(number)
