"""How the live model is laid out over the run's processes: whole on each (:class:`NoSharding`), or sharded (``run.fsdp``).

The engine reads and writes the live model only through a :class:`Sharding`: its forward
form, its weights in and out, its optimizer's state and the finiteness check. The two
layouts implement the same interface, so the loop has no branch on which one runs.

Sharded data parallelism (:class:`FsdpSharding`): parameters, gradients and optimizer state split over the processes.

Each process keeps 1/N of every transformer layer's parameters, their gradients and their
AdamW moments, and gathers a layer's full parameters only while it computes with them
(torch's FSDP2, ``fully_shard``, the sharding Accelerate's FSDP plugin applies; used directly
here because Accelerate enables FSDP on GPUs only, and this way the same code runs on CPU
process groups too). Every layer of the model's layer lists (``nn.ModuleList``: open_clip's
``resblocks``) is a unit, the model is the root unit; scalar parameters (the temperature),
which FSDP cannot split, stay whole on every process with their gradients averaged.

Weights cross this boundary whole: :meth:`FsdpSharding.full_weights` gathers them on every
process (mergers, evaluation, checkpoints see ordinary tensors under the usual names), and
:meth:`FsdpSharding.load_weights` scatters full weights back into the shards. A method trains
sharded only where it says so (``UpdateMethod.supports_fsdp``): one that keeps tensors of its
own or folds adapters when it exports weights needs its weights whole.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn

from ..components import StateDict, UpdateMethod
from ..spec import RunSpec
from .runtime import Runtime
from .training import all_finite


def layer_units(model: nn.Module) -> list[nn.Module]:
    """The modules sharded one by one: every item of every ``nn.ModuleList`` (transformer layers)."""
    return [layer for module in model.modules() if isinstance(module, nn.ModuleList) for layer in module]


class Sharding(ABC):
    """The live model's layout over the processes; every method that reads the model whole is a collective where the
    model is sharded (every process calls it)."""

    @abstractmethod
    def shard(self, model: nn.Module) -> None:
        """Lay ``model`` out in place, once, after the method prepared it."""

    @abstractmethod
    def forward_model(self, model: nn.Module) -> nn.Module:
        """The model as the training step runs it forward."""

    @abstractmethod
    def export_weights(self, model: nn.Module) -> StateDict:
        """The whole weights under the base model's names (what mergers, evaluation and deployment see)."""

    @abstractmethod
    def import_weights(self, model: nn.Module, weights: StateDict) -> None:
        """Whole weights under the base model's names into the live model (a merger's train-from weights)."""

    @abstractmethod
    def model_state(self, model: nn.Module) -> StateDict:
        """The live model's whole state (adapters included), as a checkpoint keeps it."""

    @abstractmethod
    def load_model_state(self, model: nn.Module, state: StateDict) -> None:
        """A checkpoint's :meth:`model_state` back into the live model."""

    @abstractmethod
    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state, as a checkpoint keeps it."""

    @abstractmethod
    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """A checkpoint's :meth:`optimizer_state` back into the optimizer."""

    @abstractmethod
    def all_finite(self, model: nn.Module) -> bool:
        """Whether every weight of the model is finite (on every process)."""


def sharding_for(spec: RunSpec, runtime: Runtime, method: UpdateMethod) -> Sharding:
    """The layout the spec asks for (``run.fsdp``)."""
    return FsdpSharding(runtime) if spec.run.fsdp else NoSharding(runtime, method)


class NoSharding(Sharding):
    """The whole model on every process (one process, or data parallelism): weights cross the method's own boundary,
    which folds adapters into the base model's names."""

    def __init__(self, runtime: Runtime, method: UpdateMethod) -> None:
        self.runtime, self.method = runtime, method

    def shard(self, model: nn.Module) -> None:
        pass

    def forward_model(self, model: nn.Module) -> nn.Module:
        return self.runtime.wrap_for_training(model)

    def export_weights(self, model: nn.Module) -> StateDict:
        return self.method.export_weights(model)

    def import_weights(self, model: nn.Module, weights: StateDict) -> None:
        self.method.import_weights(model, weights)

    def model_state(self, model: nn.Module) -> StateDict:
        return _to_cpu(model.state_dict())

    def load_model_state(self, model: nn.Module, state: StateDict) -> None:
        model.load_state_dict(state, strict=True)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        optimizer.load_state_dict(state)

    def all_finite(self, model: nn.Module) -> bool:
        return all_finite(model)


class FsdpSharding(Sharding):
    """FSDP2 over the run's processes. Weights and states cross whole, under the names of the unsharded model: a
    method trains sharded only where it exports its live weights as they are (``UpdateMethod.supports_fsdp``)."""

    def __init__(self, runtime: Runtime) -> None:
        from torch.distributed.device_mesh import init_device_mesh

        self.runtime = runtime
        self.mesh = init_device_mesh(runtime.device.type, (runtime.world_size,))

    def shard(self, model: nn.Module) -> None:
        """Shard ``model`` in place (its parameters become DTensors under the same names)."""
        from torch.distributed.fsdp import fully_shard

        scalars = {parameter for parameter in model.parameters() if parameter.ndim == 0}
        for layer in layer_units(model):
            fully_shard(layer, mesh=self.mesh)
        fully_shard(model, mesh=self.mesh, ignored_params=scalars)
        world_size = self.runtime.world_size
        for parameter in scalars:
            # every process computes the loss of the whole global batch (features are gathered), so these gradients
            # agree already; averaging keeps them equal whatever rounding does
            def average(parameter: torch.Tensor) -> None:
                if parameter.grad is not None:
                    dist.all_reduce(parameter.grad)
                    parameter.grad.div_(world_size)

            parameter.register_post_accumulate_grad_hook(average)

    def _options(self) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)

    def full_weights(self, model: nn.Module) -> StateDict:
        """The model's whole weights on every process (a collective: every process calls it)."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        weights = get_model_state_dict(model, options=self._options())
        # a model's state dict holds tensors only (its type admits any state value)
        return {name: cast(torch.Tensor, tensor).detach().clone() for name, tensor in weights.items()}

    def load_weights(self, model: nn.Module, weights: StateDict) -> None:
        """Whole weights (every process holds them) into the shards."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        device = self.runtime.device
        set_model_state_dict(model, {name: tensor.to(device) for name, tensor in weights.items()}, options=self._options())

    def forward_model(self, model: nn.Module) -> nn.Module:
        return model  # a sharded model synchronises itself: no data-parallel wrapper

    def export_weights(self, model: nn.Module) -> StateDict:
        return self.full_weights(model)

    def import_weights(self, model: nn.Module, weights: StateDict) -> None:
        self.load_weights(model, weights)

    def model_state(self, model: nn.Module) -> StateDict:
        return _to_cpu(self.full_weights(model))

    def load_model_state(self, model: nn.Module, state: StateDict) -> None:
        self.load_weights(model, state)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state with whole tensors, keyed by parameter name (a collective)."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(model, optimizer, options=self._options())
        return _to_cpu(state)

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        # the loader matches the saved groups' settings key by key: a fresh optimizer's groups lack the ones the engine
        # adds as it trains (the learning-rate multiplier)
        for group, saved in zip(optimizer.param_groups, state.get("param_groups", []), strict=False):
            for key, value in saved.items():
                if key != "params":
                    group.setdefault(key, value)
        set_optimizer_state_dict(model, optimizer, _to_device(state, self.runtime.device), options=self._options())

    def all_finite(self, model: nn.Module) -> bool:
        """Whether every process's shards are finite (a collective)."""
        local = [_local(parameter) for parameter in model.parameters() if parameter.is_floating_point()]
        flag = torch.stack([torch.isfinite(tensor).all() for tensor in local if tensor.numel()] or [torch.tensor(True)])
        finite = flag.all().to(self.runtime.device, torch.int32)
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    to_local = getattr(tensor, "to_local", None)
    return to_local() if callable(to_local) else tensor


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        # optimizer step counters stay where AdamW keeps them (the CPU, unless capturable)
        return value if value.ndim == 0 else value.to(device)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_device(item, device) for item in value)
    return value
