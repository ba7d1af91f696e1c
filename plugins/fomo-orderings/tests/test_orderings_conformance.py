"""Every ordering passes the ordering conformance suite on toy sets (and the toy CLIP for those asking the model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fomo_host.api import Concept
from fomo_host.testing import OrderingConformance


class TestRandom(OrderingConformance):
    ordering_name = "random"
    params = {"seed": 3}


class TestDatasetIncremental(OrderingConformance):
    ordering_name = "dataset-incremental"
    invalid_params = {"one_task_per_dataset": "sometimes"}


class TestDatasetIncrementalOneTaskPerDataset(OrderingConformance):
    ordering_name = "dataset-incremental"
    params = {"one_task_per_dataset": True, "datasets": ["toy-b", "toy-c", "toy-a"]}


class TestExplicit(OrderingConformance):
    ordering_name = "explicit"

    def params_for(self, tmp_path: Path, concepts: list[Concept]) -> dict[str, Any]:
        stream = tmp_path / "stream.json"
        stream.write_text(json.dumps([str(concept) for concept in reversed(concepts)]), encoding="utf-8")
        return {"file": str(stream)}


class TestFrequency(OrderingConformance):
    ordering_name = "frequency"

    def params_for(self, tmp_path: Path, concepts: list[Concept]) -> dict[str, Any]:
        table = tmp_path / "frequencies.json"
        table.write_text(json.dumps({str(concept): (7 * index) % 5 for index, concept in enumerate(concepts)}), encoding="utf-8")
        return {"file": str(table)}


class TestSimilarity(OrderingConformance):
    ordering_name = "similarity"


class TestPerformance(OrderingConformance):
    ordering_name = "performance"
    params = {"batch_size": 5}
