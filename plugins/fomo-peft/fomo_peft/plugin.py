"""Registers the adapter methods."""

from fomo_host.api import hookimpl

from .adapters import DoRA, DoRAParams, LoRA, LoRAParams, VeRA, VeRAParams


@hookimpl
def register_methods(register):
    register(name="lora", factory=LoRA, params=LoRAParams)
    register(name="dora", factory=DoRA, params=DoRAParams)
    register(name="vera", factory=VeRA, params=VeRAParams)
