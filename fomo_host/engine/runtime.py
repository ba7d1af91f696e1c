"""Device, precision and processes, decided by Accelerate."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from ..errors import FomoError
from ..process import ProcessInfo


def resolve_precision(requested: str, device: torch.device) -> str:
    """The spec's ``run.precision`` on a device: ``auto`` is bf16 where CUDA supports it and no elsewhere."""
    if requested == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    if requested == "fp16" and device.type != "cuda":
        raise FomoError(f"run.precision = 'fp16' needs a CUDA device, this run is on {device.type}; use 'bf16' or 'no'")
    return requested


@dataclass(frozen=True)
class Precision:
    """Mixed precision of forward passes on one kind of device: ``no``, ``bf16`` or ``fp16`` (with a gradient scaler)."""

    name: str
    device_type: str

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed precision for forward passes (bf16 or fp16), or nothing."""
        if self.name == "no":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None


@dataclass
class Runtime:
    accelerator: Accelerator
    precision: str

    @classmethod
    def create(cls, precision: str, cpu: bool) -> Runtime:
        """``precision`` as the spec gives it (``auto`` included); the runtime holds the resolved one."""
        # Accelerate only forms a multi-process CPU group when told it runs on the CPU
        accelerator = Accelerator(cpu=cpu or not torch.cuda.is_available(), mixed_precision="no")
        return cls(accelerator, resolve_precision(precision, accelerator.device))

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def process(self) -> ProcessInfo:
        """What plugins learn about this process (hook arguments, build contexts, merge inputs)."""
        return ProcessInfo(rank=self.rank, world_size=self.world_size)

    @property
    def distributed(self) -> bool:
        return self.accelerator.distributed_type != DistributedType.NO and self.world_size > 1

    @property
    def mixed_precision(self) -> Precision:
        return Precision(self.precision, self.device.type)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Mixed precision for forward passes (bf16 or fp16), or nothing."""
        return self.mixed_precision.autocast()

    def wrap_for_training(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel over the currently trainable parameters when several processes run."""
        if not self.distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, task index, purpose), stable across Python runs."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without disturbing the global random state (e.g. evaluation between training)."""
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])


def random_state() -> dict[str, Any]:
    """The state of every global random generator (Python, NumPy, torch CPU and CUDA): what a checkpoint inside a
    task keeps, so dropout and anything else that draws continue as in the uninterrupted run."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_random_state(state: dict[str, Any] | None) -> None:
    if state is None:
        return
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
