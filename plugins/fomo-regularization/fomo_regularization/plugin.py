"""Registers the regularisation methods."""

from fomo_host.api import hookimpl

from .distillation import Distillation, DistillationParams
from .ewc import EWC, EWCParams
from .si import SI, SIParams


@hookimpl
def register_methods(register):
    register(name="ewc", factory=EWC, params=EWCParams)
    register(name="si", factory=SI, params=SIParams)
    register(name="distillation", factory=Distillation, params=DistillationParams)
