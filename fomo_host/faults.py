"""A test hook for fault injection: kill this process at a named point of a run, as a power cut or OOM killer would.

``FOMO_FAULT_AT=NAME[:N]`` makes the process send itself SIGKILL the N-th time (default
the first) it reaches the point ``NAME``: no exception, no ``finally``, no flush, exactly
what an external kill leaves behind. The fault test (``tests/test_faults.py``) kills runs at
every point and checks that each resume is exact or refused in one line. Unset, a point
costs one environment lookup. The points:

==============================  ==========================================================
``run.started``                 the resolved spec is written, the base weights not yet
``evaluation.dataset``          one dataset of an evaluation is scored
``evaluation.recorded``         an evaluation's line is appended to results.jsonl
``training.step``               an optimizer step is done
``merge.done``                  the merger decided (and wrote its store files)
``weights.temporary``           a weight file is written under its temporary name
``text.temporary``              a text file (spec, results, summary) is written under its temporary name
``checkpoint.state``            a checkpoint's state is written, not yet renamed
``checkpoint.renamed``          the state is renamed, its manifest (the commit) not yet written
``checkpoint.committed``        the manifest is written, older checkpoints not yet pruned
``run.summarised``              summary.json is written
==============================  ==========================================================
"""

from __future__ import annotations

import os
import signal
from collections import Counter

VARIABLE = "FOMO_FAULT_AT"
POINTS = (
    "run.started",
    "evaluation.dataset",
    "evaluation.recorded",
    "training.step",
    "merge.done",
    "weights.temporary",
    "text.temporary",
    "checkpoint.state",
    "checkpoint.renamed",
    "checkpoint.committed",
    "run.summarised",
)

_reached: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill the process here when ``FOMO_FAULT_AT`` names this point and its count is reached."""
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
