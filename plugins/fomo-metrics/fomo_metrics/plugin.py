"""Registers the evaluation metrics."""

from fomo_host.api import hookimpl

from .metrics import RetrievalRecall, RetrievalRecallParams, ZeroShotAccuracy, ZeroShotAccuracyParams


@hookimpl
def register_metrics(register):
    register(name="zero-shot-accuracy", factory=ZeroShotAccuracy, params=ZeroShotAccuracyParams)
    register(name="retrieval-recall", factory=RetrievalRecall, params=RetrievalRecallParams)
