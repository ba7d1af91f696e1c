"""Conformance tests for optimizers: subclass :class:`OptimizerConformance` in your plugin's tests.

::

    from fomo_host.testing import OptimizerConformance

    class TestLion(OptimizerConformance):
        optimizer_name = "lion"
        optimizer_params = {"betas": [0.9, 0.99]}
        invalid_optimizer_params = {"betas": [2.0, 0.99]}

A subclass gets: the params validate, and an unknown key and ``invalid_optimizer_params``
are rejected (in a spec too, as one line naming ``optimizer.params``); a two-task run of the
tiny CLIP on the synthetic data, trained by ``method_name`` (``finetune`` by default) with the
optimizer, finishes and its first task changes weights; the optimizer's state kept across
tasks (``reset_per_task = false``) round-trips exactly through a checkpoint (saved, loaded
into a fresh optimizer, saved again: the same tensors and settings); and a run interrupted
inside its second task and resumed ends with exactly the results and weights of the
uninterrupted run. The runs need the plugins the method suite needs (see
:mod:`fomo_host.testing.methods`) and the method's plugin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from ..components import BuildContext, TaskInfo
from ..engine.checkpoint import Checkpoint
from ..engine.training import TaskOptimizers, start_task
from ..errors import SpecError
from ..resolve import resolve_components
from ..spec_loading import build_spec
from .methods import MethodConformance


class OptimizerConformance(MethodConformance):
    """The conformance suite of the ``optimizer`` kind; set the class attributes in a subclass."""

    optimizer_name: ClassVar[str] = ""
    optimizer_params: ClassVar[dict[str, Any]] = {}
    """The optimizer's params for the runs."""
    invalid_optimizer_params: ClassVar[dict[str, Any] | None] = None
    """A params table the optimizer must reject (None: only the unknown-key check)."""
    lr: ClassVar[float] = 1e-3
    method_name: ClassVar[str] = "finetune"
    """The method whose trainable parameters and groups the optimizer trains (any method works with any optimizer)."""

    def optimizer_table(self) -> dict[str, Any]:
        """The spec's ``[optimizer]``: the state crosses the task boundary, so the checkpoint between tasks holds it too."""
        return {"name": self.optimizer_name, "params": dict(self.optimizer_params), "lr": self.lr, "reset_per_task": False}

    def spec_table(self) -> dict[str, Any]:
        table = super().spec_table()
        table["run"]["name"] = f"conformance-{self.optimizer_name}"
        table["optimizer"] = self.optimizer_table()
        return table

    @pytest.fixture(scope="class")
    @classmethod
    def uninterrupted(cls, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
        run_dir = tmp_path_factory.mktemp(f"{cls.optimizer_name}-uninterrupted") / "run"
        cls().run_stream(run_dir, cache_dir)
        return run_dir

    # ------------------------------------------------------------------ tests

    def test_params_validate_and_reject_bad_values(self) -> None:
        host = self.load_host()
        component = host.registry.get("optimizer", self.optimizer_name)
        component.validate_params(self.optimizer_params)
        with pytest.raises(ValidationError):
            component.validate_params({**self.optimizer_params, "no_such_option": 1})
        table = self.spec_table()
        table["optimizer"]["params"]["no_such_option"] = 1
        with pytest.raises(SpecError, match=r"optimizer\.params\.no_such_option: unknown key") as refused:
            build_spec(table, registry=host.registry)
        assert "\n" not in str(refused.value)
        if self.invalid_optimizer_params is not None:
            with pytest.raises(ValidationError):
                component.validate_params({**self.optimizer_params, **self.invalid_optimizer_params})

    def test_state_round_trips_through_a_checkpoint(self, uninterrupted: Path, cache_dir: Path) -> None:
        checkpoint = Checkpoint.load(uninterrupted)
        assert checkpoint is not None and checkpoint.optimizer is not None, "reset_per_task = false keeps the state in the checkpoint"
        saved = checkpoint.optimizer
        assert saved["state"], f"{self.optimizer_name} kept no state after two tasks"
        _, optimizer, _ = self.restored_optimizer(checkpoint, cache_dir)
        _assert_same_state(optimizer.state_dict(), saved, self.optimizer_name)

    # ------------------------------------------------------------------ helpers

    def restored_optimizer(self, checkpoint: Checkpoint, cache_dir: Path) -> tuple[nn.Module, torch.optim.Optimizer, TaskOptimizers]:
        """The next task's optimizer as a resumed run builds it: the method prepared, the checkpoint's model, method
        and optimizer states loaded (the optimizer not yet switched to its training form)."""
        host = self.load_host()
        spec = self.build(host)
        components = resolve_components(spec, host.registry)
        method = components.method.build()
        model = method.prepare(components.model.build(BuildContext(seed=0, cache_dir=cache_dir)).model)
        model.load_state_dict(checkpoint.model, strict=True)
        method.load_state_dict(checkpoint.method)
        optimizers = TaskOptimizers(spec.optimizer, components.optimizer.build(), torch.device("cpu"))
        info = TaskInfo(checkpoint.next_task, checkpoint.next_task + 1, self.steps_per_task, [])
        optimizer = start_task(model, method, info, optimizers)
        assert checkpoint.optimizer is not None
        optimizer.load_state_dict(checkpoint.optimizer)
        return model, optimizer, optimizers


def _assert_same_state(found: Any, expected: Any, name: str, path: str = "state_dict") -> None:
    """Equal tensors (dtype, shape, values) and equal plain values, all the way down."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(found, torch.Tensor), f"{name}: {path} is {type(found).__name__}, saved a tensor"
        assert found.dtype == expected.dtype and found.shape == expected.shape, f"{name}: {path} changed dtype or shape"
        assert torch.equal(found.cpu(), expected.cpu()), f"{name}: {path} changed through save and load"
    elif isinstance(expected, dict):
        assert isinstance(found, dict) and set(found) == set(expected), f"{name}: {path} has other keys after save and load"
        for key in expected:
            _assert_same_state(found[key], expected[key], name, f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(found, list | tuple) and len(found) == len(expected), f"{name}: {path} changed length"
        for index, (item, saved) in enumerate(zip(found, expected, strict=True)):
            _assert_same_state(item, saved, name, f"{path}.{index}")
    else:
        assert found == expected, f"{name}: {path} = {found!r} after save and load, saved {expected!r}"
