"""Registers the learning-rate schedulers: per task, and meta schedules across tasks."""

from fomo_host.api import hookimpl

from .meta import (
    CosineAutoregressive,
    CosineDynamicRecovery,
    CosineMetaParams,
    RsqrtAutoregressive,
    RsqrtContinued,
    RsqrtMetaParams,
    RsqrtRecovered,
    RsqrtRecoveredParams,
)
from .open_ended import CosineStream, CosineStreamParams, Infinite, InfiniteParams, RsqrtInfinite, RsqrtInfiniteParams
from .schedules import WSD, Constant, ConstantParams, Cosine, CosineParams, Rsqrt, RsqrtParams, WSDParams


@hookimpl
def register_schedulers(register):
    register(name="constant", factory=Constant, params=ConstantParams)
    register(name="cosine", factory=Cosine, params=CosineParams, default=True)
    register(name="rsqrt", factory=Rsqrt, params=RsqrtParams)
    register(name="wsd", factory=WSD, params=WSDParams)
    register(name="rsqrt-autoregressive", factory=RsqrtAutoregressive, params=RsqrtMetaParams)
    register(name="rsqrt-continued", factory=RsqrtContinued, params=RsqrtMetaParams)
    register(name="rsqrt-recovered", factory=RsqrtRecovered, params=RsqrtRecoveredParams)
    register(name="cosine-autoregressive", factory=CosineAutoregressive, params=CosineMetaParams)
    register(name="cosine-dynamic-recovery", factory=CosineDynamicRecovery, params=CosineMetaParams)
    register(name="infinite", factory=Infinite, params=InfiniteParams)
    register(name="rsqrt-infinite", factory=RsqrtInfinite, params=RsqrtInfiniteParams)
    register(name="cosine-stream", factory=CosineStream, params=CosineStreamParams)
