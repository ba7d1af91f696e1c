"""Every regularisation method passes the method conformance suite (each trains every weight)."""

from __future__ import annotations

from fomo_host.testing import MethodConformance


class TestEWC(MethodConformance):
    method_name = "ewc"
    params = {"lambda": 100.0, "gamma": 0.9, "fisher_batches": 2}
    invalid_params = {"gamma": 1.5}


class TestSI(MethodConformance):
    method_name = "si"
    params = {"c": 10.0, "xi": 0.01}
    invalid_params = {"xi": 0}


class TestDistillationOfFeatures(MethodConformance):
    method_name = "distillation"
    params = {"weight": 2.0, "target": "features"}
    invalid_params = {"target": "gradients"}


class TestDistillationOfLogits(MethodConformance):
    method_name = "distillation"
    params = {"weight": 1.0, "target": "logits"}
    invalid_params = {"weight": 0}
