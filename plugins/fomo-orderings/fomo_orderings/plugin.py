"""Registers the stream orderings."""

from fomo_host.api import hookimpl

from .model_orderings import PerformanceOrdering, PerformanceParams, SimilarityOrdering, SimilarityParams
from .orderings import (
    DatasetIncremental,
    DatasetIncrementalParams,
    ExplicitOrdering,
    ExplicitParams,
    FrequencyOrdering,
    FrequencyParams,
    RandomOrdering,
    RandomParams,
)


@hookimpl
def register_orderings(register):
    register(name="random", factory=RandomOrdering, params=RandomParams)
    register(name="dataset-incremental", factory=DatasetIncremental, params=DatasetIncrementalParams)
    register(name="explicit", factory=ExplicitOrdering, params=ExplicitParams)
    register(name="frequency", factory=FrequencyOrdering, params=FrequencyParams)
    register(name="similarity", factory=SimilarityOrdering, params=SimilarityParams)
    register(name="performance", factory=PerformanceOrdering, params=PerformanceParams)
