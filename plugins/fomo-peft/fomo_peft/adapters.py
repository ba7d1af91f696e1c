"""LoRA, DoRA and VeRA adapters on the transformer blocks of open_clip towers.

The adapters live inside the live model (its forward stays ``model(images,
tokens)``), so the host checkpoints them with the model's own state dict.
Weights leave the method as full weights under the base model's names with the
adapter folded in, computed without touching the live model; weights enter by
overwriting the base weights and resetting the adapters, so that the model then
computes exactly the given weights.

The MLP layers (``c_fc``, ``c_proj``: ``nn.Linear``) get peft's LoRA, DoRA and
VeRA layers. Attention (``attn``) is different: ``nn.MultiheadAttention`` reads
its projection weights directly and never calls ``out_proj.forward``, and peft
0.21's LoRA layer for it adds the output projection's update twice in the
forward pass. So LoRA and DoRA on attention are a parametrization of
``in_proj_weight`` and ``out_proj.weight`` (the weight is recomputed as
``W + scale * B A``, or its DoRA form, whenever the attention reads it). VeRA
keeps to the MLP layers: its random projections are shared state of peft's
tuner.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping

import torch
from peft import LoraConfig, VeraConfig, inject_adapter_in_model
from peft.tuners import lora, vera
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn
from torch.nn.utils import parametrize

from fomo_host.api import FomoError, StateDict, TaskData, TaskInfo, UpdateMethod

from .params import AdapterParams, DoRAParams, LoRAParams, VeRAParams

ADAPTER = "default"
TARGET_PATHS: dict[str, tuple[str, type[nn.Module]]] = {
    "attn": ("attn", nn.MultiheadAttention),
    "c_fc": ("mlp.c_fc", nn.Linear),
    "c_proj": ("mlp.c_proj", nn.Linear),
}
ATTENTION_WEIGHTS = (("", "in_proj_weight"), ("out_proj", "weight"))
"""(submodule, tensor) pairs of an attention layer that an attention adapter updates."""


# ----------------------------------------------------------------------------- attention adapters


class LowRankUpdate(nn.Module):
    """A parametrization ``W -> W + scale * B A`` (LoRA); B starts at zero, so it starts as the identity."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float) -> None:
        super().__init__()
        out_features, in_features = weight.shape
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(weight.new_empty(rank, in_features))
        self.lora_B = nn.Parameter(weight.new_empty(out_features, rank))
        self.reset(weight)

    def delta(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scale

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta()

    @torch.no_grad()
    def reset(self, weight: torch.Tensor) -> None:
        # as peft and the reference LoRA initialise nn.Linear adapters
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)


class DecomposedUpdate(LowRankUpdate):
    """A parametrization ``W -> m * (W + scale * B A) / ||W + scale * B A||`` (DoRA), norms over output rows.

    The norm is detached from the gradient, as DoRA recommends and peft does.
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        combined = weight + self.delta()
        return (self.magnitude / torch.linalg.norm(combined, dim=1).detach()).unsqueeze(1) * combined

    @torch.no_grad()
    def reset(self, weight: torch.Tensor) -> None:
        super().reset(weight)
        # the magnitude equals the weight's row norms, so the layer computes exactly the weight
        norms = torch.linalg.norm(weight, dim=1)
        if "magnitude" in self._parameters:
            self.magnitude.copy_(norms)
        else:
            self.magnitude = nn.Parameter(norms)


# ----------------------------------------------------------------------------- the model's blocks


def block_containers(model: nn.Module) -> dict[str, list[str]]:
    """The ``resblocks`` lists of each tower: {"image": [...], "text": [...]} (module names)."""
    towers: dict[str, list[str]] = {"image": [], "text": []}
    for name, module in model.named_modules():
        if name.endswith("resblocks") and isinstance(module, nn.ModuleList):
            towers["image" if name.startswith("visual.") else "text"].append(name)
    return towers


def target_modules(model: nn.Module, params: AdapterParams) -> dict[str, list[str]]:
    """Full module names to adapt, by target; raises :class:`FomoError` if the model lacks them."""
    containers = block_containers(model)
    towers = ["image", "text"] if params.towers == "both" else [params.towers]
    modules = dict(model.named_modules())
    names: dict[str, list[str]] = {target: [] for target in params.targets}
    for tower in towers:
        if not containers[tower]:
            raise FomoError(f"adapters: the model has no open_clip transformer blocks in its {tower} tower (towers = {params.towers!r})")
        for container in containers[tower]:
            count = len(modules[container])
            indices = range(count) if params.blocks == "all" else params.blocks
            too_large = [index for index in indices if index >= count]
            if too_large:
                raise FomoError(f"adapters: blocks {too_large} do not exist in {container}, which has {count} blocks (0..{count - 1})")
            for index in indices:
                for target in params.targets:
                    path, expected = TARGET_PATHS[target]
                    name = f"{container}.{index}.{path}"
                    if not isinstance(modules.get(name), expected):
                        raise FomoError(f"adapters: target {target!r} expects a {expected.__name__} at {name}, found none")
                    names[target].append(name)
    return names


_PARAMETRIZED = re.compile(r"\.parametrizations\.([^.]+)\.original$")


def base_name(live_name: str) -> str:
    """The base model's name of a live parameter: peft's ``.base_layer`` and parametrization wrappers removed."""
    return _PARAMETRIZED.sub(r".\1", live_name.replace(".base_layer", ""))


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


# ----------------------------------------------------------------------------- the methods


class AdapterMethod(UpdateMethod):
    """Trains adapters only; the base weights stay frozen (until folded in at a task's end, if asked)."""

    name = ""

    def __init__(self, params: AdapterParams) -> None:
        self.params = params
        self._live_to_base: dict[str, str] = {}
        self._peft_layers: list[tuple[str, BaseTunerLayer]] = []
        self._attention: list[tuple[str, nn.Module, str]] = []
        """(base name of the weight, module holding it, tensor name) of every parametrized attention weight."""

    # -- what each method supplies

    def inject_linear(self, model: nn.Module, pattern: str) -> None:
        raise NotImplementedError

    def attention_update(self, weight: torch.Tensor) -> LowRankUpdate:
        raise NotImplementedError

    def folded_linear(self, layer: BaseTunerLayer) -> torch.Tensor:
        """The full weight of a peft layer with its adapter folded in."""
        raise NotImplementedError

    def reset_linear(self, layer: BaseTunerLayer) -> None:
        """Re-initialise a peft layer's adapter so that it adds nothing to its (new) base weight."""
        raise NotImplementedError

    # -- the contract

    def prepare(self, model: nn.Module) -> nn.Module:
        base_keys = set(model.state_dict())
        targets = target_modules(model, self.params)
        linear = [name for target in ("c_fc", "c_proj") for name in targets.get(target, [])]
        if linear:
            pattern = "^(?:" + "|".join(re.escape(name) for name in linear) + ")$"
            with warnings.catch_warnings():
                # peft notes that open_clip's CLIP is not a transformers model; it needs nothing from one
                warnings.simplefilter("ignore", UserWarning)
                self.inject_linear(model, pattern)
        modules = dict(model.named_modules())
        for attention in targets.get("attn", []):
            for submodule, tensor_name in ATTENTION_WEIGHTS:
                owner = modules[_join(attention, submodule)]
                parametrize.register_parametrization(owner, tensor_name, self.attention_update(getattr(owner, tensor_name).detach()))
                self._attention.append((_join(attention, submodule, tensor_name), owner, tensor_name))
        self._live_to_base = {key: base_name(key) for key in model.state_dict() if base_name(key) in base_keys}
        missing = base_keys - set(self._live_to_base.values())
        if missing:
            raise RuntimeError(f"{self.name}: base weights lost after adding adapters: {sorted(missing)[:5]}")
        self._peft_layers = [(name, module) for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
        return model

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        return [(name, parameter) for name, parameter in model.named_parameters() if name not in self._live_to_base]

    def end_task(self, model: nn.Module, task: TaskInfo, data: TaskData) -> None:
        if self.params.merge_at_task_end:
            self.import_weights(model, self.export_weights(model))

    def export_weights(self, model: nn.Module) -> StateDict:
        state = model.state_dict()
        full = {base: state[live].detach().clone() for live, base in self._live_to_base.items()}
        with torch.no_grad():
            for layer_name, layer in self._peft_layers:
                full[f"{base_name(layer_name)}.weight"] = self.folded_linear(layer)
            for weight_name, owner, tensor_name in self._attention:
                full[weight_name] = getattr(owner, tensor_name).detach().clone()
        return full

    def import_weights(self, model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
        expected = set(self._live_to_base.values())
        if set(weights) != expected:
            difference = sorted(expected.symmetric_difference(weights))[:5]
            raise KeyError(f"{self.name}: weights do not match the base model's names (e.g. {difference})")
        state = model.state_dict(keep_vars=True)
        with torch.no_grad():
            for live, base in self._live_to_base.items():
                state[live].copy_(weights[base])
            for _, layer in self._peft_layers:
                self.reset_linear(layer)
            for _, owner, tensor_name in self._attention:
                parametrization = owner.parametrizations[tensor_name]
                parametrization[0].reset(parametrization.original)


class LoRA(AdapterMethod):
    """LoRA (Hu et al. 2022): a trainable low-rank update B A, scaled by alpha / rank, on frozen weights."""

    name = "lora"
    params: LoRAParams

    def linear_config(self, pattern: str) -> LoraConfig:
        return LoraConfig(r=self.params.rank, lora_alpha=self.params.alpha, lora_dropout=self.params.dropout, target_modules=pattern)

    def inject_linear(self, model: nn.Module, pattern: str) -> None:
        inject_adapter_in_model(self.linear_config(pattern), model, adapter_name=ADAPTER)

    def attention_update(self, weight: torch.Tensor) -> LowRankUpdate:
        return LowRankUpdate(weight, self.params.rank, self.params.alpha)

    def folded_linear(self, layer: BaseTunerLayer) -> torch.Tensor:
        assert isinstance(layer, lora.Linear)
        return layer.get_base_layer().weight + layer.get_delta_weight(ADAPTER)

    def reset_linear(self, layer: BaseTunerLayer) -> None:
        layer.reset_lora_parameters(ADAPTER, init_lora_weights=True)


class DoRA(LoRA):
    """DoRA (Liu et al. 2024): weight-decomposed LoRA; a trainable magnitude per output row and a LoRA update of the direction."""

    name = "dora"
    params: DoRAParams

    def linear_config(self, pattern: str) -> LoraConfig:
        config = super().linear_config(pattern)
        config.use_dora = True
        return config

    def attention_update(self, weight: torch.Tensor) -> LowRankUpdate:
        return DecomposedUpdate(weight, self.params.rank, self.params.alpha)

    def folded_linear(self, layer: BaseTunerLayer) -> torch.Tensor:
        # W' = m * (W + dW) / ||W + dW||, norms over output rows, as DoRA's forward computes it
        combined = super().folded_linear(layer)
        magnitude = layer.lora_magnitude_vector[ADAPTER].weight
        return (magnitude / torch.linalg.norm(combined, dim=1)).unsqueeze(1) * combined

    def reset_linear(self, layer: BaseTunerLayer) -> None:
        super().reset_linear(layer)
        dora_layer = layer.lora_magnitude_vector[ADAPTER]
        # the magnitude equals the new weight's row norms, so the layer computes exactly its base weight
        dora_layer.weight.copy_(torch.linalg.norm(layer.get_base_layer().weight, dim=1))
        dora_layer._cache_clear()


class VeRA(AdapterMethod):
    """VeRA (Kopiczko et al. 2024): frozen random projections shared by all layers, trainable scaling vectors d and b per layer."""

    name = "vera"
    params: VeRAParams

    def inject_linear(self, model: nn.Module, pattern: str) -> None:
        config = VeraConfig(
            r=self.params.rank,
            vera_dropout=self.params.dropout,
            d_initial=self.params.d_initial,
            projection_prng_key=self.params.projection_seed,
            save_projection=True,
            target_modules=pattern,
        )
        # the shared projections are tuner state, which inject_adapter_in_model refuses; the tuner
        # injects into the model in place and every layer keeps the projections as buffers
        vera.VeraModel(model, config, ADAPTER)

    def folded_linear(self, layer: BaseTunerLayer) -> torch.Tensor:
        assert isinstance(layer, vera.layer.Linear)
        return layer.get_base_layer().weight + layer.get_delta_weight(ADAPTER)

    def reset_linear(self, layer: BaseTunerLayer) -> None:
        layer.reset_vera_parameters(ADAPTER, d_initial=self.params.d_initial)
