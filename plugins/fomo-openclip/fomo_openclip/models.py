"""Model components: open_clip architectures with pretrained weights (a local file, a tag or a hub name), and a tiny CLIP for CPU runs."""

from __future__ import annotations

import copy
from typing import Any

import open_clip
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.model import CLIP

from fomo_host.api import OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, OPEN_CLIP_PREPROCESS, BuildContext, FomoError, ModelBundle

from .params import OpenCLIPParams, TinyCLIPParams, resolve_weights
from .pretrained import HUB_PREFIX, MissingWeights, resolve_hub_model


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
