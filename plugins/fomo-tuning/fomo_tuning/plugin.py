"""Registers the tuning methods."""

from fomo_host import hookimpl
from fomo_host.registry import NoParams

from .methods import FineTune


@hookimpl
def register_methods(register):
    register(name="finetune", factory=FineTune, params=NoParams)
