"""Registers GaLore; torch and galore-torch load when the method is built."""

from fomo_host.api import MethodRegister, hookimpl

from .params import GaLoreParams


@hookimpl
def register_methods(register: MethodRegister) -> None:
    register(
        name="galore",
        factory="fomo_optim.galore:GaLore",
        params=GaLoreParams,
        description=(
            "GaLore (Zhao et al. 2024): every parameter trains; the Adam states of the block matrices live in a low-rank gradient subspace."
        ),
    )
