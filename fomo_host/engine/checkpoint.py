"""The run's checkpoints: everything needed to continue after the last finished task (or inside a task), checksummed.

Layout: ``checkpoints/NNNNN.pt`` (the state) and ``checkpoints/NNNNN.json`` (its
manifest), NNNNN counting up with every checkpoint. A checkpoint is written in
this order: the state to a temporary file, fsync, rename; then the manifest (the
SHA-256 of the state and of every stored weight file, see
:mod:`fomo_host.integrity`), fsync, rename. The manifest's rename is the commit:
a state without a manifest is an unfinished write and is ignored. Only then is
the checkpoint before the previous one deleted, so two intact checkpoints are
kept: an interruption at any moment, a full disk or damaged bytes in the newest
one leave an earlier one to continue from.

A checkpoint at a task's end needs no saved generator state: every task re-seeds
all generators from (run seed, task index), so a task restarted from it sees the
same batches and dropout masks as the uninterrupted run. One written inside a task
(``run.checkpoint_every_steps``) keeps the generators' states, the task's optimizer
and gradient-scaler states and its loss so far; the task's batches restart at the
step (the loader plans the skipped ones without reading them).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import FomoError
from ..faults import fault_point
from ..integrity import IntegrityError, digests, fsync_directory, unique_temporary, verify
from ..run_directory import CHECKPOINT_DIR, checkpoint_generations, explain
from ..stored import Manifest, validated

WEIGHTS_DIR = "weights"
BASE_WEIGHTS = f"{WEIGHTS_DIR}/base.safetensors"
FORMAT_VERSION = 2


@dataclass
class Checkpoint:
    next_task: int
    records: list[dict[str, Any]]
    """The evaluations written so far (``results.jsonl`` at this point), so that a resume can check and rebuild that file."""
    global_step: int
    samples_seen: int
    spec_fingerprint: str
    model: dict[str, torch.Tensor]
    method: dict[str, Any]
    merger: dict[str, Any]
    optimizer: dict[str, Any] | None
    step_in_task: int = 0
    """Steps of task ``next_task`` already trained: 0 at a task's end, else a checkpoint inside the task."""
    task_loss_sum: float = 0.0
    """Inside a task: its contrastive losses so far, summed (the task's recorded mean loss continues from it)."""
    random_state: dict[str, Any] | None = None
    """Inside a task: the global random generators' states."""
    grad_scaler: dict[str, Any] | None = None
    """Inside a task trained in fp16: the gradient scaler's state."""

    def save(self, run_dir: Path) -> Path:
        """Write a new checkpoint and keep the previous one; returns the state file.

        A failed write (a full disk) removes its partial files and says in one line that
        the previous checkpoint is intact.
        """
        folder = run_dir / CHECKPOINT_DIR
        folder.mkdir(exist_ok=True)
        generations = _generations(folder)
        number = (generations[0] + 1) if generations else 1
        state_path = folder / f"{number:05d}.pt"
        manifest_path = folder / f"{number:05d}.json"
        written: list[Path] = []
        try:
            _write_atomically(
                state_path, lambda handle: torch.save({"format": FORMAT_VERSION, **self.__dict__}, handle), written, "checkpoint.state"
            )
            fault_point("checkpoint.renamed")
            weight_files = sorted(f"{WEIGHTS_DIR}/{path.name}" for path in (run_dir / WEIGHTS_DIR).glob("*.safetensors"))
            manifest = {
                "format": FORMAT_VERSION,
                "next_task": self.next_task,
                "step_in_task": self.step_in_task,
                "global_step": self.global_step,
                "records": len(self.records),
                "state": f"{CHECKPOINT_DIR}/{state_path.name}",
                "files": digests(run_dir, [f"{CHECKPOINT_DIR}/{state_path.name}", *weight_files]),
            }
            text = json.dumps(manifest, indent=1, sort_keys=True).encode()
            _write_atomically(manifest_path, lambda handle: handle.write(text), written)
        except BaseException as exc:
            # whatever stopped the write (a full disk, an interrupt), no partial file stays behind
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            if not isinstance(exc, OSError):
                raise
            previous = "no earlier checkpoint"
            if generations:
                previous = f"the previous checkpoint ({_describe(folder, generations[0])}) is intact"
            raise FomoError(
                f"cannot write checkpoint {state_path}: {explain(exc, state_path).split(': ', 1)[-1]}; {previous}; "
                f"once fixed, continue with: fomo-host run --resume {run_dir}"
            ) from None
        fsync_directory(folder)
        fault_point("checkpoint.committed")
        # the new checkpoint and the one before it stay
        _prune(folder, keep_from=generations[0] if generations else number)
        return state_path

    @classmethod
    def load(cls, run_dir: Path, warn: Any = None) -> Checkpoint | None:
        """The newest intact checkpoint, or None when the run has none yet.

        Each candidate is verified against its manifest before it is read. A damaged newest
        checkpoint is reported through ``warn`` and the previous one is used: resuming from
        it re-runs a task, with the same results. When none is intact the error names the
        first damaged file.
        """
        folder = run_dir / CHECKPOINT_DIR
        if (run_dir / "checkpoint.pt").is_file() and not folder.is_dir():
            raise FomoError(f"{run_dir}: checkpoint.pt was written by an earlier fomo-host without checksums; start the run again")
        problems: list[str] = []
        damaged: list[int] = []
        for number in _generations(folder):
            try:
                checkpoint = cls._load_verified(run_dir, folder / f"{number:05d}.json")
            except IntegrityError as exc:
                problems.append(str(exc))
                damaged.append(number)
                continue
            if problems:
                if warn is not None:
                    warn(f"warning: {problems[0]}; continuing from the earlier intact checkpoint ({_describe(folder, number)})")
                for bad in damaged:
                    _set_aside(folder, bad)
            return checkpoint
        if problems:
            raise IntegrityError(f"cannot resume {run_dir}: {problems[0]}; no earlier checkpoint is intact")
        return None

    @classmethod
    def _load_verified(cls, run_dir: Path, manifest_path: Path) -> Checkpoint:
        try:
            content = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"{manifest_path} is damaged ({type(exc).__name__})") from None
        if isinstance(content, dict) and content.get("format") != FORMAT_VERSION:
            raise FomoError(f"{manifest_path}: written by an incompatible fomo-host version")
        try:
            manifest = validated(Manifest, content, manifest_path)
        except FomoError as exc:
            raise IntegrityError(str(exc)) from None
        state, files = manifest.state, manifest.files
        verify(run_dir, files, required={state, BASE_WEIGHTS})
        try:
            content = torch.load(run_dir / state, map_location="cpu", weights_only=False)
        except Exception as exc:  # the bytes matched their checksum, so this is not damage: an incompatible writer
            raise FomoError(f"{run_dir / state}: cannot be read ({type(exc).__name__}: {exc})") from None
        if content.pop("format", None) != FORMAT_VERSION:
            raise FomoError(f"{run_dir / state}: written by an incompatible fomo-host version")
        return cls(**content)


def _generations(folder: Path) -> list[int]:
    """Committed checkpoints (those with a manifest), newest first."""
    return checkpoint_generations(folder)


def _describe(folder: Path, number: int) -> str:
    try:
        manifest = json.loads((folder / f"{number:05d}.json").read_text(encoding="utf-8"))
        if manifest.get("step_in_task"):
            return f"at step {manifest['step_in_task']} of task {manifest['next_task'] + 1}"
        return f"after task {manifest['next_task']}" if manifest["next_task"] else "before the first task"
    except (OSError, ValueError, KeyError, TypeError):
        return f"number {number}"


class _RecordedWrites:
    """A file that keeps the OSError its last failed write raised: torch's zip writer turns that error (a full disk)
    into a RuntimeError when it closes, which would hide what happened."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return int(self._handle.write(data))
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._handle.flush()


def _write_atomically(path: Path, write: Any, written: list[Path], fault: str | None = None) -> None:
    temporary = unique_temporary(path)
    written.append(temporary)
    with open(temporary, "wb") as handle:
        recorded = _RecordedWrites(handle)
        try:
            write(recorded)
        except RuntimeError:
            if recorded.error is not None:
                raise recorded.error from None
            raise
        handle.flush()
        os.fsync(handle.fileno())
    if fault is not None:
        fault_point(fault)
    os.replace(temporary, path)
    written[-1] = path


def _prune(folder: Path, keep_from: int) -> None:
    """Delete checkpoints older than ``keep_from``, and the leftovers of interrupted writes and of damaged checkpoints.

    Manifests go first, so a half-pruned checkpoint is never taken for a committed one.
    """
    committed = set(_generations(folder))
    for path in sorted(folder.iterdir(), key=lambda p: not p.name.endswith(".json")):
        stem = path.name.split(".", 1)[0]
        number = int(stem) if stem.isdigit() else None
        if ".tmp-" in path.name or (number is not None and (number < keep_from or number not in committed)):
            with contextlib.suppress(OSError):
                path.unlink()


def _set_aside(folder: Path, number: int) -> None:
    """Un-commit a damaged checkpoint (its manifest is kept, renamed, until pruned), so the next one takes its number."""
    manifest = folder / f"{number:05d}.json"
    with contextlib.suppress(OSError):
        os.replace(manifest, manifest.with_name(manifest.name + ".damaged"))
