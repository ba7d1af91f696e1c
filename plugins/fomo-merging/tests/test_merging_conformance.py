"""Every merge schedule and every merge operator passes its conformance suite."""

from __future__ import annotations

from fomo_host.testing import MergeOperatorConformance, MergerConformance


class TestNoMerge(MergerConformance):
    merger_name = "none"


class TestEMAMerge(MergerConformance):
    merger_name = "ema"
    params = {"weight": 0.3}
    invalid_params = {"weight": 1.5}


class TestEMAMergeWithDARE(MergerConformance):
    merger_name = "ema"
    params = {"operator": {"name": "dare", "params": {"drop": 0.3, "combine": "ties"}}}
    invalid_params = {"operator": "no-such-operator"}


class TestZeroShotMerge(MergerConformance):
    merger_name = "zero-shot"
    params = {"operator": "slerp", "weight": 0.4}


class TestFinetunedMerge(MergerConformance):
    merger_name = "finetuned"
    params = {"operator": {"name": "ties", "params": {"density": 0.5}}}
    invalid_params = {"operator": "model-stock"}


class TestOfflineMerge(MergerConformance):
    merger_name = "offline"
    params = {"operator": {"name": "breadcrumbs", "params": {"drop_largest": 0.1, "drop_smallest": 0.2}}}
    invalid_params = {"operator": "slerp"}


class TestOfflineModelStock(MergerConformance):
    merger_name = "offline"
    params = {"operator": "model-stock"}


class TestGeneralMerge(MergerConformance):
    merger_name = "general"
    params = {"init": "all", "deploy": "running", "operator": "magmax", "lines": {"alpha": 0.5, "beta": 0.5}}
    invalid_params = {"init": "everything"}


class TestInterpolation(MergeOperatorConformance):
    operator_name = "interpolation"


class TestSlerp(MergeOperatorConformance):
    operator_name = "slerp"


class TestTaskArithmetic(MergeOperatorConformance):
    operator_name = "task-arithmetic"
    params = {"lambda": 0.5}


class TestTies(MergeOperatorConformance):
    operator_name = "ties"
    params = {"density": 0.5, "lambda": 0.8}
    invalid_params = {"density": 0}


class TestTiesTrimmedGlobally(MergeOperatorConformance):
    operator_name = "ties"
    params = {"trim": "global"}


class TestDare(MergeOperatorConformance):
    operator_name = "dare"
    params = {"drop": 0.3, "seed": 4}
    invalid_params = {"drop": 1.0}


class TestDareTies(MergeOperatorConformance):
    operator_name = "dare"
    params = {"combine": "ties"}


class TestBreadcrumbs(MergeOperatorConformance):
    operator_name = "breadcrumbs"
    params = {"drop_largest": 0.1, "drop_smallest": 0.3}
    invalid_params = {"drop_largest": 0.5, "drop_smallest": 0.5}


class TestMagMax(MergeOperatorConformance):
    operator_name = "magmax"


class TestModelStock(MergeOperatorConformance):
    operator_name = "model-stock"
