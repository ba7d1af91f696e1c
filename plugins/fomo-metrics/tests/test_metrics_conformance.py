"""Both metrics pass the metric conformance suite on the toy CLIP and toy sets."""

from __future__ import annotations

from fomo_host.testing import MetricConformance


class TestZeroShotAccuracy(MetricConformance):
    metric_name = "zero-shot-accuracy"
    params = {"top_k": [1, 2]}
    invalid_params = {"top_k": [0]}
    task_types = ("classification",)


class TestRetrievalRecall(MetricConformance):
    metric_name = "retrieval-recall"
    params = {"k": [1, 5], "primary_k": 5}
    invalid_params = {"primary_k": 3}
    task_types = ("retrieval",)
