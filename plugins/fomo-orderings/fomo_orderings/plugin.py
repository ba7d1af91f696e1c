"""Registers the stream orderings."""

from fomo_host import hookimpl

from .orderings import (
    DatasetIncremental,
    DatasetIncrementalParams,
    ExplicitOrdering,
    ExplicitParams,
    RandomOrdering,
    RandomParams,
)


@hookimpl
def register_orderings(register):
    register(name="random", factory=RandomOrdering, params=RandomParams)
    register(name="dataset-incremental", factory=DatasetIncremental, params=DatasetIncrementalParams)
    register(name="explicit", factory=ExplicitOrdering, params=ExplicitParams)
