"""Model components: open_clip architectures with a local checkpoint, and a tiny CLIP for CPU runs."""

from __future__ import annotations

from pathlib import Path

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import BuildContext, FomoError, ModelBundle, checks_files


class OpenCLIPParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    architecture: str = Field(min_length=1, description="an open_clip model config name, e.g. 'ViT-B-16'")
    pretrained: Path | None = Field(
        default=None, description="a local checkpoint file (open_clip or OpenAI format); none for random initialisation"
    )
    force_quick_gelu: bool = Field(default=False, description="QuickGELU activations, as OpenAI's original weights need")

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: str) -> str:
        available = open_clip.list_models()
        if value not in available:
            close = [name for name in available if name.lower().startswith(value.lower().split("-")[0])][:8]
            raise ValueError(f"unknown open_clip architecture {value!r}; similar: {', '.join(close) or 'see open_clip.list_models()'}")
        return value

    @field_validator("pretrained")
    @classmethod
    def _checkpoint_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and checks_files(info) and not value.expanduser().is_file():
            raise ValueError(f"checkpoint {str(value)!r} does not exist; give the path of a local file (no downloads are made)")
        return value.expanduser() if value is not None else None


def build_open_clip(params: OpenCLIPParams, context: BuildContext) -> ModelBundle:
    """An open_clip architecture by name, weights from a local checkpoint file (never downloaded)."""
    try:
        model = open_clip.create_model(
            params.architecture,
            pretrained=str(params.pretrained) if params.pretrained else None,
            force_quick_gelu=params.force_quick_gelu,
            pretrained_image=False,
            pretrained_text=False,
        )
    except RuntimeError as exc:
        raise FomoError(f"model.params.pretrained: cannot load {params.pretrained} into {params.architecture}: {exc}") from exc
    tokenizer = open_clip.get_tokenizer(params.architecture)
    visual = model.visual
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    preprocess = getattr(visual, "preprocess_cfg", {}) or {}
    return ModelBundle(
        model=model,
        tokenizer=tokenizer,
        image_size=int(size),
        image_mean=tuple(preprocess.get("mean", OPENAI_DATASET_MEAN)),
        image_std=tuple(preprocess.get("std", OPENAI_DATASET_STD)),
        name=params.architecture,
        info={"pretrained": str(params.pretrained) if params.pretrained else None},
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
        info={"config": config},
    )
