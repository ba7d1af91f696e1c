"""Registers the evaluation metrics; torch loads when a metric is built."""

from fomo_host.api import MetricRegister, hookimpl

from .params import RetrievalRecallParams, ZeroShotAccuracyParams


@hookimpl
def register_metrics(register: MetricRegister) -> None:
    register(
        name="zero-shot-accuracy",
        factory="fomo_metrics.metrics:ZeroShotAccuracy",
        params=ZeroShotAccuracyParams,
        description="Zero-shot classification accuracy: each image against every class's template embedding (CLIP, Radford et al. 2021).",
        default=True,
    )
    register(
        name="retrieval-recall",
        factory="fomo_metrics.metrics:RetrievalRecall",
        params=RetrievalRecallParams,
        description="Image-text retrieval recall@k over every caption of every test image (COCO-style), in both directions.",
        default=True,
    )
