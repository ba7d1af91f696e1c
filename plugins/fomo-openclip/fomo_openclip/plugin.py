"""Registers the open_clip model components."""

from fomo_host.api import hookimpl

from .models import OpenCLIPParams, TinyCLIPParams, build_open_clip, build_tiny_clip


@hookimpl
def register_models(register):
    register(name="open-clip", factory=build_open_clip, params=OpenCLIPParams)
    register(name="tiny-clip", factory=build_tiny_clip, params=TinyCLIPParams)
