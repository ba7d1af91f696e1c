"""The run's checkpoint: everything needed to continue after the last finished task.

Written after every task's evaluation, atomically (temp file, then rename), so
an interruption at any moment leaves either the previous or the new checkpoint,
never a broken one. Randomness needs no saved generator state: every task
re-seeds all generators from (run seed, task index), so a task restarted from
its checkpoint sees the same batches and dropout masks as the uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import FomoError

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    next_task: int
    records: int
    global_step: int
    samples_seen: int
    spec_fingerprint: str
    model: dict[str, torch.Tensor]
    method: dict[str, Any]
    merger: dict[str, Any]
    optimizer: dict[str, Any] | None

    def save(self, run_dir: Path) -> None:
        path = run_dir / CHECKPOINT_FILE
        temporary = path.with_name(path.name + ".tmp")
        torch.save({"format": FORMAT_VERSION, **self.__dict__}, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, run_dir: Path) -> Checkpoint:
        path = run_dir / CHECKPOINT_FILE
        if not path.is_file():
            raise FomoError(f"{run_dir}: no {CHECKPOINT_FILE} to resume from (the run stopped before its first evaluation finished)")
        content = torch.load(path, map_location="cpu", weights_only=False)
        if content.pop("format", None) != FORMAT_VERSION:
            raise FomoError(f"{path}: written by an incompatible fomo-host version")
        return cls(**content)
