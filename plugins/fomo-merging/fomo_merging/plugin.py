"""Registers the merge schedules."""

from fomo_host import hookimpl
from fomo_host.registry import NoParams

from .schedules import NoMerge


@hookimpl
def register_mergers(register):
    register(name="none", factory=NoMerge, params=NoParams)
