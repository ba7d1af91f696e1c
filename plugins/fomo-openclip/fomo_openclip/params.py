"""The model components' Params: what a spec may set, checked without importing open_clip where possible.

open_clip itself is imported only by the validators that need its lists of
architectures and pretrained tags, so registering the components and validating a
tiny-clip spec stay cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import checks_files, expand_path

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
        import open_clip

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
    import open_clip

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
            import open_clip

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
