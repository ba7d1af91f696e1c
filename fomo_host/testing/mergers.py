"""Conformance tests for mergers: subclass :class:`MergerConformance` in your plugin's tests.

::

    from fomo_host.testing import MergerConformance

    class TestMyMerge(MergerConformance):
        merger_name = "my-merge"
        params = {"operator": "ties"}

A subclass gets, over a stream of small weights: the params validate; every decision
keeps the train-from / deploy contract (None, or full weights with the base's keys,
shapes and dtypes); the base and fine-tuned weights are never modified, nor aliased by
what is returned; the state round-trips through a checkpoint (small: weights belong in the store) and
a resumed merger continues exactly, even when the interrupted process had already
merged the next task; the tensors the merger keeps in memory do not grow with the
number of tasks; and a second process of the run decides the same and writes (creates,
changes, deletes, or rewrites with the same bytes) no file the main process writes,
anywhere under the run directory, the two taking their turns task by task.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from pydantic import ValidationError

from ..components import MergeDecision, MergeInputs, Merger, StateDict
from ..process import ProcessInfo
from ..weights import WeightStore
from .helpers import build_component, validate_params
from .merge_operators import base_weights, finetuned_weights


def tensor_bytes(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of the tensors reachable from ``value`` (attributes, containers), each counted once."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v, seen) for v in value.values())
    if isinstance(value, list | tuple | set):
        return sum(tensor_bytes(v, seen) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sum(tensor_bytes(v, seen) for v in vars(value).values())
    return 0


class MergerConformance:
    """The conformance suite of the ``merger`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    merger_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the merger must reject (None: only the unknown-key check)."""
    num_tasks: ClassVar[int] = 6

    def merger(self) -> Merger:
        merger: Merger = build_component("merger", self.merger_name, self.params)
        return merger

    def stream(self) -> tuple[StateDict, list[StateDict]]:
        base = base_weights()
        return base, [finetuned_weights(base, task) for task in range(self.num_tasks)]

    def after_task(
        self, merger: Merger, store: WeightStore, base: StateDict, finetuned: StateDict, task: int, process: ProcessInfo = ProcessInfo()
    ) -> MergeDecision:
        with torch.no_grad():
            return merger.after_task(MergeInputs(task, self.num_tasks, base, finetuned, store, process))

    def run(self, merger: Merger, store: WeightStore, tasks: range, process: ProcessInfo = ProcessInfo()) -> list[MergeDecision]:
        base, stream = self.stream()
        return [self.after_task(merger, store, base, stream[task], task, process) for task in tasks]

    def test_params_validate_and_reject_bad_values(self) -> None:
        validate_params("merger", self.merger_name, self.params)
        with pytest.raises(ValidationError):
            validate_params("merger", self.merger_name, {**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("merger", self.merger_name, {**self.params, **self.invalid_params})

    def test_decisions_are_none_or_full_weights(self, tmp_path: Path) -> None:
        base, _ = self.stream()
        for decision in self.run(self.merger(), WeightStore(tmp_path), range(self.num_tasks)):
            assert isinstance(decision, MergeDecision)
            for weights in (decision.train_from, decision.deploy):
                if weights is None:
                    continue
                assert set(weights) == set(base), "merged weights must use exactly the base model's names"
                for key, tensor in base.items():
                    assert weights[key].shape == tensor.shape and weights[key].dtype == tensor.dtype, key

    def test_inputs_are_never_modified_nor_aliased(self, tmp_path: Path) -> None:
        base, stream = self.stream()
        base_copy = {key: tensor.clone() for key, tensor in base.items()}
        merger, store = self.merger(), WeightStore(tmp_path)
        for task, finetuned in enumerate(stream):
            finetuned_copy = {key: tensor.clone() for key, tensor in finetuned.items()}
            decision = self.after_task(merger, store, base, finetuned, task)
            assert all(torch.equal(finetuned[key], finetuned_copy[key]) for key in finetuned), "the fine-tuned weights were modified"
            for weights in (decision.train_from, decision.deploy):
                if weights is not None and weights is not base:  # theta_0 itself may be returned: the host copies it in
                    shared = [key for key in base if weights[key].data_ptr() in (base[key].data_ptr(), finetuned[key].data_ptr())]
                    assert not shared, f"returned weights share memory with an input: {shared[:5]}"
        assert all(torch.equal(base[key], base_copy[key]) for key in base), "the base weights were modified"

    def test_state_round_trips_and_a_resumed_merger_continues_exactly(self, tmp_path: Path) -> None:
        uninterrupted = self.run(self.merger(), WeightStore(tmp_path / "uninterrupted"), range(self.num_tasks))
        base, stream = self.stream()
        store = WeightStore(tmp_path / "resumed")
        first = self.merger()
        self.run(first, store, range(2))
        state = first.state_dict()
        model_bytes = tensor_bytes(base)
        assert tensor_bytes(state) < model_bytes, "the state holds weights: they belong in the store (inputs.store)"
        self.after_task(first, store, base, stream[2], 2)  # the process died after merging task 2, before its checkpoint
        second = self.merger()
        second.load_state_dict(copy.deepcopy(state))
        for task in range(2, self.num_tasks):
            decision = self.after_task(second, store, base, stream[task], task)
            expected = uninterrupted[task]
            for found, wanted in ((decision.train_from, expected.train_from), (decision.deploy, expected.deploy)):
                assert (found is None) == (wanted is None), f"task {task}: resumed decision differs"
                if found is not None and wanted is not None:
                    assert all(torch.equal(found[key], wanted[key]) for key in base), f"task {task}: resumed weights differ"

    def test_memory_kept_does_not_grow_with_the_number_of_tasks(self, tmp_path: Path) -> None:
        merger, store = self.merger(), WeightStore(tmp_path)
        base, stream = self.stream()
        kept = []
        for task in range(self.num_tasks):
            decision = self.after_task(merger, store, base, stream[task], task)
            del decision
            kept.append(tensor_bytes(merger))
        assert kept[-1] <= kept[1], f"tensors held by the merger grew with the tasks: {kept} bytes"

    def test_a_second_process_decides_the_same_and_writes_none_of_the_main_process_files(self, tmp_path: Path) -> None:
        """Both processes of a two-process run, task by task, on one run directory: every file either process
        creates, changes or deletes is recorded (a rewrite with the same bytes too), and no file is written by both."""
        run_dir = tmp_path / "run"
        store = WeightStore(run_dir / "weights")
        base, stream = self.stream()
        mergers = {0: self.merger(), 1: self.merger()}
        decisions: dict[int, list[MergeDecision]] = {0: [], 1: []}
        written: dict[int, set[str]] = {0: set(), 1: set()}
        for task in range(self.num_tasks):
            for rank, merger in mergers.items():
                before = _files(tmp_path)
                decisions[rank].append(self.after_task(merger, store, base, stream[task], task, ProcessInfo(rank=rank, world_size=2)))
                written[rank] |= _written_since(before, _files(tmp_path))
        for task, (a, b) in enumerate(zip(decisions[0], decisions[1], strict=True)):
            for found, wanted in ((b.train_from, a.train_from), (b.deploy, a.deploy)):
                assert (found is None) == (wanted is None) and (
                    found is None or all(torch.equal(found[k], wanted[k]) for k in found)  # type: ignore[index]
                ), f"task {task}: the processes decided differently"
        both = sorted(written[0] & written[1])
        assert not both, f"the second process wrote (created, changed or deleted) files the main process writes: {both[:10]}"


_UNTOUCHED_NS = 1_000_000_000
"""The modification time every file is given before a process's turn: any write sets the current time instead."""


def _files(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every file under ``root``: (inode, modification time, size, content hash); their times then set to a mark."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            status = path.stat()
            found[str(path.relative_to(root))] = (status.st_ino, status.st_mtime_ns, status.st_size, _digest(path))
            os.utime(path, ns=(_UNTOUCHED_NS, _UNTOUCHED_NS))
    return found


def _written_since(before: dict[str, tuple[int, int, int, str]], after: dict[str, tuple[int, int, int, str]]) -> set[str]:
    """Files created, deleted or written (new inode, new time, new size or new bytes) between two :func:`_files` calls."""
    changed = set(before) ^ set(after)
    for name in set(before) & set(after):
        inode, mtime, size, digest = after[name]
        if inode != before[name][0] or mtime != _UNTOUCHED_NS or (size, digest) != before[name][2:]:
            changed.add(name)
    return changed


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
