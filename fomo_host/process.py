"""Which process of a run this is: what a plugin needs to know about several processes, handed to it by the host.

Hooks and component inputs carry a :class:`ProcessInfo` (``process=``), so plugins never
read ``RANK`` or ``WORLD_SIZE`` from the environment: the host alone knows how the run was
launched (``accelerate launch``, torchrun, one process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the run: ``rank`` in ``0..world_size-1``; rank 0 is the main process."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """The process that writes shared files (results, checkpoints, logs) and prints."""
        return self.rank == 0


SINGLE_PROCESS = ProcessInfo()
"""A run of one process (and the default wherever a component is used outside a run, as in its tests)."""


def is_main_process() -> bool:
    """True on the process that prints and writes (rank 0 under ``accelerate launch``); the host's own check, for
    before a run has its runtime (plugins are handed a :class:`ProcessInfo` instead)."""
    return os.environ.get("RANK", "0") == "0"
