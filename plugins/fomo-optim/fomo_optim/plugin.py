"""Registers GaLore."""

from fomo_host.api import hookimpl

from .galore import GaLore, GaLoreParams


@hookimpl
def register_methods(register):
    register(name="galore", factory=GaLore, params=GaLoreParams)
