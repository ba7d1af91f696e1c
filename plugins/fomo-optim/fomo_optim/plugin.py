"""Registers the optimizers; torch, bitsandbytes, galore-torch and schedulefree load when one is built."""

from fomo_host.api import OptimizerRegister, hookimpl

from .params import AdamW8bitParams, AdamWParams, GaLoreParams, ScheduleFreeAdamWParams


@hookimpl
def register_optimizers(register: OptimizerRegister) -> None:
    register(
        name="adamw",
        factory="fomo_optim.optimizers:AdamW",
        params=AdamWParams,
        default=True,
        description="AdamW (Loshchilov and Hutter 2019), torch's implementation, fused on CUDA: the paper's optimizer.",
    )
    register(
        name="adamw8bit",
        factory="fomo_optim.optimizers:AdamW8bit",
        params=AdamW8bitParams,
        description="bitsandbytes' AdamW8bit (Dettmers et al. 2022): both moments kept in 8 bits, blockwise quantised.",
    )
    register(
        name="galore",
        factory="fomo_optim.galore:GaLore",
        params=GaLoreParams,
        description=(
            "GaLore (Zhao et al. 2024), galore-torch's projected AdamW: the Adam states of the transformer blocks' "
            "matrices live in a low-rank subspace of their gradients."
        ),
    )
    register(
        name="adamw-schedulefree",
        factory="fomo_optim.optimizers:ScheduleFreeAdamW",
        params=ScheduleFreeAdamWParams,
        description=(
            "Schedule-free AdamW (Defazio et al. 2024, the schedulefree package): no decay schedule and no horizon; "
            "evaluated at the averaged iterate."
        ),
    )
