"""Registers the adapter methods; peft loads when a method is built."""

from fomo_host.api import MethodRegister, hookimpl

from .params import DoRAParams, LoRAParams, VeRAParams


@hookimpl
def register_methods(register: MethodRegister) -> None:
    register(
        name="lora",
        factory="fomo_peft.adapters:LoRA",
        params=LoRAParams,
        description="LoRA (Hu et al. 2022): a trainable low-rank update B A, scaled by alpha / rank, on frozen weights.",
    )
    register(
        name="dora",
        factory="fomo_peft.adapters:DoRA",
        params=DoRAParams,
        description=(
            "DoRA (Liu et al. 2024): weight-decomposed LoRA; a trainable magnitude per output row and a LoRA update of the direction."
        ),
    )
    register(
        name="vera",
        factory="fomo_peft.adapters:VeRA",
        params=VeRAParams,
        description=(
            "VeRA (Kopiczko et al. 2024): frozen random projections shared by all layers, trainable scaling vectors d and b per layer."
        ),
    )
