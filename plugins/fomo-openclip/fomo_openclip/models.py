"""Model components: open_clip architectures with pretrained weights (a local file, a tag or a hub name), and a tiny CLIP for CPU runs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import (
    OPEN_CLIP_ARCHITECTURE,
    OPEN_CLIP_CONFIG,
    OPEN_CLIP_PREPROCESS,
    BuildContext,
    FomoError,
    ModelBundle,
    checks_files,
    expand_path,
)

from .pretrained import HUB_PREFIX, MissingWeights, ResolvedWeights, resolve_hub, resolve_hub_model, resolve_tag, split_hub_name


class OpenCLIPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: str = Field(
        min_length=1,
        description="an open_clip model config name ('ViT-B-16'), or 'hf-hub:org/repo' for a cached hub model (config and weights)",
    )
    pretrained: str | None = Field(
        default=None,
        description="weights: a local file (open_clip or OpenAI format; ~ and ${VAR} expand), an open_clip tag of the architecture "
        "('laion2b_s34b_b88k', 'openai') or 'hf-hub:org/repo[/file]', both read from the local caches; none: random initialisation",
    )
    force_quick_gelu: bool | None = Field(
        default=None,
        description="QuickGELU activations; default: as the named weights were trained (on for OpenAI's tags), else off",
    )

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: str) -> str:
        if value.startswith(HUB_PREFIX):
            split_hub_name(value.removeprefix(HUB_PREFIX))
            return value
        available = open_clip.list_models()
        if value not in available:
            close = [name for name in available if name.lower().startswith(value.lower().split("-")[0])][:8]
            raise ValueError(f"unknown open_clip architecture {value!r}; similar: {', '.join(close) or 'see open_clip.list_models()'}")
        return value

    @field_validator("pretrained", mode="before")
    @classmethod
    def _expand(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str) or value.startswith(HUB_PREFIX) or _is_tag(info.data.get("architecture"), value):
            return value
        return str(expand_path(value, info))

    @model_validator(mode="after")
    def _weights_are_here(self, info: ValidationInfo) -> OpenCLIPParams:
        if self.architecture.startswith(HUB_PREFIX) and self.pretrained is not None:
            raise ValueError(f"architecture {self.architecture!r} brings its own weights; leave pretrained unset")
        if checks_files(info):
            try:
                resolve_weights(self)
            except MissingWeights as exc:
                raise ValueError(str(exc)) from None
        return self


def _is_tag(architecture: str | None, value: str) -> bool:
    return bool(architecture) and not str(architecture).startswith(HUB_PREFIX) and bool(open_clip.get_pretrained_cfg(architecture, value))


def resolve_weights(params: OpenCLIPParams) -> ResolvedWeights | None:
    """The local file behind ``pretrained`` (None for random initialisation or a hub architecture); checks QuickGELU."""
    name = params.pretrained
    if name is None:
        if params.architecture.startswith(HUB_PREFIX):
            resolve_hub_model(params.architecture)
        return None
    if name.startswith(HUB_PREFIX):
        repo_id, filename = split_hub_name(name.removeprefix(HUB_PREFIX))
        resolved = ResolvedWeights(resolve_hub(repo_id, filename, params.architecture, name))
    elif _is_tag(params.architecture, name):
        resolved = resolve_tag(params.architecture, name)
    else:
        path = Path(name)
        if not path.is_file():
            tags = open_clip.list_pretrained_tags_by_model(params.architecture)
            raise MissingWeights(
                f"checkpoint {name!r} does not exist, nor is it a pretrained tag of {params.architecture} "
                f"(its tags: {', '.join(tags) or 'none'}); give a local file or a tag (no downloads are made)"
            )
        resolved = ResolvedWeights(path)
    if resolved.quick_gelu and params.force_quick_gelu is False:
        raise MissingWeights(
            f"force_quick_gelu = false contradicts the weights {name!r}, which were trained with QuickGELU; leave force_quick_gelu unset"
        )
    return resolved


def build_open_clip(params: OpenCLIPParams, context: BuildContext) -> ModelBundle:
    """An open_clip architecture by name, its weights from a local file, an open_clip tag or a hub name (never downloaded)."""
    try:
        resolved = resolve_weights(params)
    except MissingWeights as exc:
        raise FomoError(f"model.params.pretrained: {exc}") from None
    model_config_name = params.architecture
    # OpenAI's weights need QuickGELU; open_clip only warns when it is missing, and the model then computes other features
    quick_gelu = params.force_quick_gelu if params.force_quick_gelu is not None else bool(resolved is not None and resolved.quick_gelu)
    options: dict[str, Any] = {"force_quick_gelu": quick_gelu, "pretrained_image": False, "pretrained_text": False}
    if resolved is not None and resolved.preprocess:
        options["force_preprocess_cfg"] = {key: resolved.preprocess[key] for key in ("mean", "std") if key in resolved.preprocess}
    if params.architecture.startswith(HUB_PREFIX):
        hub_config, weights = resolve_hub_model(params.architecture)
        model_config_name = f"local-dir:{weights.parent}"
        model_config = copy.deepcopy(hub_config["model_cfg"])
    else:
        model_config = open_clip.get_model_config(params.architecture)
    try:
        model = open_clip.create_model(
            model_config_name,
            pretrained=str(resolved.path) if resolved is not None else None,
            **options,
        )
    except RuntimeError as exc:
        raise FomoError(f"model.params.pretrained: cannot load {params.pretrained} into {params.architecture}: {exc}") from exc
    if quick_gelu:
        model_config["quick_gelu"] = True
    tokenizer = open_clip.get_tokenizer(model_config_name)
    visual = model.visual
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    preprocess = dict(getattr(visual, "preprocess_cfg", {}) or {})
    info: dict[str, Any] = {
        "pretrained": str(resolved.path) if resolved else None,
        OPEN_CLIP_CONFIG: model_config,
        OPEN_CLIP_PREPROCESS: preprocess,
    }
    if not params.architecture.startswith(HUB_PREFIX):
        info[OPEN_CLIP_ARCHITECTURE] = params.architecture
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        image_size=int(size),
        image_mean=tuple(preprocess.get("mean", OPENAI_DATASET_MEAN)),
        image_std=tuple(preprocess.get("std", OPENAI_DATASET_STD)),
        name=params.architecture,
        info=info,
    )


class TinyCLIPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(default=32, ge=8, description="input resolution in pixels")
    patch_size: int = Field(default=8, ge=1)
    vision_width: int = Field(default=96, ge=8)
    vision_layers: int = Field(default=3, ge=1)
    text_width: int = Field(default=64, ge=8)
    text_layers: int = Field(default=3, ge=1)
    text_heads: int = Field(default=4, ge=1)
    context_length: int = Field(default=20, ge=4, le=77)
    embed_dim: int = Field(default=64, ge=8)

    @model_validator(mode="after")
    def _shapes_fit(self) -> TinyCLIPParams:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width {self.text_width} is not a multiple of text_heads {self.text_heads}")
        if self.vision_width % 32:
            raise ValueError(f"vision_width {self.vision_width} must be a multiple of 32 (the head width)")
        return self


def tiny_clip_config(params: TinyCLIPParams) -> dict:
    return {
        "embed_dim": params.embed_dim,
        "vision_cfg": {
            "image_size": params.image_size,
            "layers": params.vision_layers,
            "width": params.vision_width,
            "patch_size": params.patch_size,
            "head_width": 32,
            "mlp_ratio": 2.0,
        },
        "text_cfg": {
            "context_length": params.context_length,
            "vocab_size": 49408,
            "width": params.text_width,
            "heads": params.text_heads,
            "layers": params.text_layers,
            "mlp_ratio": 2.0,
        },
    }


def build_tiny_clip(params: TinyCLIPParams, context: BuildContext) -> ModelBundle:
    """A ~3.5 M-parameter open_clip CLIP (ViT image tower, BPE text tower) that trains on a CPU in minutes.

    Randomly initialised from the run seed; give it ``model.warm_start`` to learn
    the pretraining pool's concepts before the stream (cached by content hash).
    """
    config = tiny_clip_config(params)
    model = CLIP(**config)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=params.context_length)
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        image_size=params.image_size,
        image_mean=(0.5, 0.5, 0.5),
        image_std=(0.5, 0.5, 0.5),
        name="tiny-clip",
        info={
            "config": config,
            OPEN_CLIP_CONFIG: config,
            OPEN_CLIP_PREPROCESS: {"size": params.image_size, "mean": [0.5] * 3, "std": [0.5] * 3},
        },
    )
