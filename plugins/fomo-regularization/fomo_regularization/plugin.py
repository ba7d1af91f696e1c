"""Registers the regularisation methods; torch loads when a method is built."""

from fomo_host.api import MethodRegister, hookimpl

from .params import DistillationParams, EWCParams, SIParams


@hookimpl
def register_methods(register: MethodRegister) -> None:
    register(
        name="ewc",
        factory="fomo_regularization.ewc:EWC",
        params=EWCParams,
        description=(
            "Online EWC (Kirkpatrick et al. 2017; Schwarz et al. 2018): full fine-tuning plus a quadratic penalty weighted by the Fisher."
        ),
    )
    register(
        name="si",
        factory="fomo_regularization.si:SI",
        params=SIParams,
        description=(
            "Synaptic Intelligence (Zenke et al. 2017): full fine-tuning plus a quadratic penalty weighted by path-integral importance."
        ),
    )
    register(
        name="distillation",
        factory="fomo_regularization.distillation:Distillation",
        params=DistillationParams,
        description=(
            "Full fine-tuning plus distillation from the frozen base model on each batch (LwF, Li & Hoiem 2017; ZSCL, Zheng et al. 2023)."
        ),
    )
