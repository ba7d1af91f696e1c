"""Registers the tuning methods; torch loads when a method is built."""

from fomo_host.api import MethodRegister, NoParams, hookimpl

from .params import LockedTowerParams, SubsetParams


@hookimpl
def register_methods(register: MethodRegister) -> None:
    register(
        name="finetune",
        factory="fomo_tuning.methods:FineTune",
        params=NoParams,
        description="Full fine-tuning of both towers and the temperature (the paper's most plastic, most forgetful baseline).",
        default=True,
        # the memory multiplier's denominator (DESIGN §5): every method's peak memory relative to full fine-tuning's
        budget_reference=True,
    )
    register(
        name="locked-image",
        factory="fomo_tuning.methods:LockedImage",
        params=LockedTowerParams,
        description="Locked-image tuning (LiT, Zhai et al. 2022): the image tower is frozen, the text tower trains.",
    )
    register(
        name="locked-text",
        factory="fomo_tuning.methods:LockedText",
        params=LockedTowerParams,
        description="Locked-text tuning: the text tower is frozen, the image tower (``model.visual``) trains.",
    )
    register(
        name="bitfit",
        factory="fomo_tuning.methods:BitFit",
        params=SubsetParams,
        description="BitFit (Ben Zaken et al. 2022): only the bias terms of both towers train, LayerNorm biases included.",
    )
    register(
        name="lnfit",
        factory="fomo_tuning.methods:LNFit",
        params=SubsetParams,
        description="LNFit: only the LayerNorm weights and biases of both towers train.",
    )
