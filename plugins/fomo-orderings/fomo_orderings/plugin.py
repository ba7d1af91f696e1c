"""Registers the stream orderings; torch loads when an ordering that asks the model is built."""

from fomo_host.api import OrderingRegister, hookimpl

from .params import DatasetIncrementalParams, ExplicitParams, FrequencyParams, PerformanceParams, RandomParams, SimilarityParams


@hookimpl
def register_orderings(register: OrderingRegister) -> None:
    register(
        name="random",
        factory="fomo_orderings.orderings:RandomOrdering",
        params=RandomParams,
        description="A seeded random permutation of all concepts (the paper's default stream).",
        default=True,
    )
    register(
        name="dataset-incremental",
        factory="fomo_orderings.orderings:DatasetIncremental",
        params=DatasetIncrementalParams,
        description="Whole datasets one after another, each a contiguous chunk of the stream.",
    )
    register(
        name="explicit",
        factory="fomo_orderings.orderings:ExplicitOrdering",
        params=ExplicitParams,
        description="The order a stream file gives; every adaptation concept must appear exactly once.",
    )
    register(
        name="frequency",
        factory="fomo_orderings.orderings:FrequencyOrdering",
        params=FrequencyParams,
        description=(
            "Concepts from rare to frequent by a concept-frequency table (e.g. counts of each class name in the pretraining "
            "captions, as the paper's frequency-ordered streams use); ``reverse`` goes frequent to rare."
        ),
    )
    register(
        name="similarity",
        factory="fomo_orderings.model_orderings:SimilarityOrdering",
        params=SimilarityParams,
        description=(
            "A nearest-neighbour chain over the base model's text embeddings of the concepts: from ``start``, always the most "
            "similar concept not yet taken, so neighbouring tasks hold semantically close concepts (the paper's "
            "similarity-ordered streams); ``reverse`` runs the chain backwards, ending at ``start``."
        ),
    )
    register(
        name="performance",
        factory="fomo_orderings.model_orderings:PerformanceOrdering",
        params=PerformanceParams,
        description=(
            "Concepts from easy to hard by the base model's zero-shot performance on the adaptation test sets: per-class top-1 "
            "accuracy for classification sets (a class without test images counts as 0), the set's mean recall@5 (both "
            "directions) for every concept of a retrieval set; ``reverse`` goes hard to easy."
        ),
    )
