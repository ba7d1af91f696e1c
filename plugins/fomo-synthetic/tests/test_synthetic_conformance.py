"""The synthetic datasets pass the dataset conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fomo_host.testing import DatasetConformance


class TestSynthetic(DatasetConformance):
    dataset_name = "synthetic"

    def params(self, tmp_path: Path) -> dict[str, Any]:
        sizes = {"pool_train_per_class": 2, "train_per_class": 2, "test_per_class": 2, "retrieval_train": 6, "retrieval_test": 6}
        return {**sizes, "adaptation": ["letters", "relations"], "zero_shot": ["shapes-outline"], "cache": False}
