"""Registers the open_clip model components; open_clip is imported only when a model is built."""

from fomo_host.api import ModelRegister, hookimpl

from .params import OpenCLIPParams, TinyCLIPParams


@hookimpl
def register_models(register: ModelRegister) -> None:
    register(
        name="open-clip",
        factory="fomo_openclip.models:build_open_clip",
        params=OpenCLIPParams,
        description="An open_clip architecture by name, its weights from a local file, an open_clip tag or a hub name (never downloaded).",
    )
    register(
        name="tiny-clip",
        factory="fomo_openclip.models:build_tiny_clip",
        params=TinyCLIPParams,
        description="A ~3.5 M-parameter open_clip CLIP (ViT image tower, BPE text tower) that trains on a CPU in minutes.",
    )
