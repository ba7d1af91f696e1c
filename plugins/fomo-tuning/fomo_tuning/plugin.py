"""Registers the tuning methods."""

from fomo_host.api import NoParams, hookimpl

from .methods import BitFit, FineTune, LNFit, LockedImage, LockedText, LockedTowerParams, SubsetParams


@hookimpl
def register_methods(register):
    register(name="finetune", factory=FineTune, params=NoParams)
    register(name="locked-image", factory=LockedImage, params=LockedTowerParams)
    register(name="locked-text", factory=LockedText, params=LockedTowerParams)
    register(name="bitfit", factory=BitFit, params=SubsetParams)
    register(name="lnfit", factory=LNFit, params=SubsetParams)
