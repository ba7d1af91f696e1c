"""Full fine-tuning and the selective variants that train a fixed subset of the weights.

Towers of an open_clip model: the image tower is ``model.visual``; the text
tower is every other parameter except the temperature (``logit_scale``, and
``logit_bias`` where a model has one): token and positional embeddings, the
text transformer, ``ln_final`` and ``text_projection`` (``model.text`` in
open_clip's CustomTextCLIP).
"""

from __future__ import annotations

from torch import nn

from fomo_host.api import FomoError, NoParams, TaskInfo, UpdateMethod

from .params import LockedTowerParams

IMAGE_TOWER_PREFIX = "visual."
TEMPERATURE_NAMES = frozenset({"logit_scale", "logit_bias"})


def is_temperature(name: str) -> bool:
    return name in TEMPERATURE_NAMES


def is_image_tower(name: str) -> bool:
    return name.startswith(IMAGE_TOWER_PREFIX)


def is_text_tower(name: str) -> bool:
    return not is_image_tower(name) and not is_temperature(name)


def is_bias(name: str) -> bool:
    """``bias`` of a layer and ``in_proj_bias`` of attention; the temperature's ``logit_bias`` is not one."""
    return name.rsplit(".", 1)[-1].endswith("bias") and not is_temperature(name)


class FineTune(UpdateMethod):
    """Full fine-tuning of both towers and the temperature (the paper's most plastic, most forgetful baseline)."""

    supports_fsdp = True

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        return list(model.named_parameters())


class SelectiveTuning(UpdateMethod):
    """Trains the parameters :meth:`selects` picks (plus the temperature if asked); the rest stays frozen."""

    supports_fsdp = True

    name = ""

    def __init__(self, params: LockedTowerParams) -> None:
        self.params = params

    def selects(self, name: str, owner: nn.Module) -> bool:
        """Whether parameter ``name`` (owned by module ``owner``) trains."""
        raise NotImplementedError

    def trainable_parameters(self, model: nn.Module, task: TaskInfo) -> list[tuple[str, nn.Parameter]]:
        self.check_model(model)
        owners = {}
        for module_name, module in model.named_modules():
            for parameter_name, _ in module.named_parameters(recurse=False):
                owners[f"{module_name}.{parameter_name}" if module_name else parameter_name] = module
        chosen = []
        for name, parameter in model.named_parameters():
            if is_temperature(name):
                if self.params.train_logit_scale:
                    chosen.append((name, parameter))
            elif self.selects(name, owners[name]):
                chosen.append((name, parameter))
        if not chosen:
            raise FomoError(f"method {self.name!r}: the model has no parameters it would train")
        return chosen

    def check_model(self, model: nn.Module) -> None:
        """Raise a :class:`FomoError` if the model lacks what the method needs."""


class LockedImage(SelectiveTuning):
    """Locked-image tuning (LiT, Zhai et al. 2022): the image tower is frozen, the text tower trains."""

    name = "locked-image"

    def check_model(self, model: nn.Module) -> None:
        _require_image_tower(model, self.name)

    def selects(self, name: str, owner: nn.Module) -> bool:
        return is_text_tower(name)


class LockedText(SelectiveTuning):
    """Locked-text tuning: the text tower is frozen, the image tower (``model.visual``) trains."""

    name = "locked-text"

    def check_model(self, model: nn.Module) -> None:
        _require_image_tower(model, self.name)

    def selects(self, name: str, owner: nn.Module) -> bool:
        return is_image_tower(name)


class BitFit(SelectiveTuning):
    """BitFit (Ben Zaken et al. 2022): only the bias terms of both towers train, LayerNorm biases included."""

    name = "bitfit"

    def selects(self, name: str, owner: nn.Module) -> bool:
        return is_bias(name)


class LNFit(SelectiveTuning):
    """LNFit: only the LayerNorm weights and biases of both towers train."""

    name = "lnfit"

    def selects(self, name: str, owner: nn.Module) -> bool:
        return isinstance(owner, nn.LayerNorm)


def _require_image_tower(model: nn.Module, method: str) -> None:
    if not isinstance(getattr(model, "visual", None), nn.Module):
        raise FomoError(f"method {method!r} needs an open_clip-style model whose image tower is `model.visual`; this model has none")
