"""Registers the learning-rate schedulers."""

from fomo_host import hookimpl

from .schedules import Constant, ConstantParams, Cosine, CosineParams


@hookimpl
def register_schedulers(register):
    register(name="constant", factory=Constant, params=ConstantParams)
    register(name="cosine", factory=Cosine, params=CosineParams)
