"""Registers the merge schedules; each takes a merge operator and its params."""

from fomo_host.api import NoParams, hookimpl

from .schedules import (
    AllMergeParams,
    EMAMerge,
    FinetunedMerge,
    FinetunedMergeParams,
    GeneralMerge,
    GeneralMergeParams,
    NoMerge,
    OfflineMerge,
    RunningMergeParams,
    ZeroShotMerge,
)


@hookimpl
def register_mergers(register):
    register(name="none", factory=NoMerge, params=NoParams)
    register(name="ema", factory=EMAMerge, params=RunningMergeParams)
    register(name="zero-shot", factory=ZeroShotMerge, params=RunningMergeParams)
    register(name="finetuned", factory=FinetunedMerge, params=FinetunedMergeParams)
    register(name="offline", factory=OfflineMerge, params=AllMergeParams)
    register(name="general", factory=GeneralMerge, params=GeneralMergeParams)
