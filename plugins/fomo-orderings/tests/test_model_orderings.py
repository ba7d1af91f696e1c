"""Frequency, similarity and performance orderings, and ``reverse`` on every ordering."""

from __future__ import annotations

import json
import math

import pytest
import torch
from fomo_orderings.model_orderings import PerformanceOrdering, SimilarityOrdering
from fomo_orderings.orderings import (
    DatasetIncremental,
    DatasetIncrementalParams,
    FrequencyOrdering,
    FrequencyParams,
    RandomOrdering,
    RandomParams,
)
from fomo_orderings.params import PerformanceParams, SimilarityParams
from pydantic import ValidationError
from torch import nn

from fomo_host.api import BuildContext, Concept, FomoError, ImageTextDataset, ModelBundle, TensorSampleSet
from fomo_host.testing import build_component, stream_tasks

CONCEPTS = [Concept("a", f"a{i}") for i in range(5)] + [Concept("b", f"b{i}") for i in range(3)]


class LookupModel(nn.Module):
    """A stand-in CLIP whose text embedding of a prompt, and image embedding of a pixel value, are given."""

    def __init__(self, text_vectors: dict[str, list[float]], image_vectors: torch.Tensor | None = None) -> None:
        super().__init__()
        self.prompts = list(text_vectors)
        self.text = torch.tensor([text_vectors[p] for p in self.prompts])
        self.image = image_vectors

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[self.prompts.index(t)] for t in texts])

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return nn.functional.normalize(self.text[tokens[:, 0]], dim=-1)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        assert self.image is not None
        return nn.functional.normalize(self.image[(images[:, 0, 0, 0] * 255).round().long()], dim=-1)


def bundle_of(model: LookupModel) -> ModelBundle:
    return ModelBundle(model, model.tokenize, image_size=2, image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))


def context_with(model: LookupModel | None, datasets: list[ImageTextDataset]) -> BuildContext:
    bundle = bundle_of(model) if model is not None else None
    return BuildContext(seed=0, cache_dir=None, datasets={d.name: d for d in datasets}, bundle=bundle)  # type: ignore[arg-type]


def test_every_ordering_reverses():
    context = BuildContext(seed=0, cache_dir=None)  # type: ignore[arg-type]
    forward = RandomOrdering(RandomParams(), context)(CONCEPTS, 2)
    assert RandomOrdering(RandomParams(reverse=True), context)(CONCEPTS, 2) == list(reversed(forward))
    per_dataset = DatasetIncremental(DatasetIncrementalParams(one_task_per_dataset=True, reverse=True), context)
    assert stream_tasks(CONCEPTS, per_dataset, 2) == [list(reversed(CONCEPTS[5:])), list(reversed(CONCEPTS[:5]))]


def test_frequency_orders_rare_to_frequent_from_json_or_csv(tmp_path):
    table = tmp_path / "counts.json"
    # full names, the paper's stream-file names and bare class names (for every dataset) all count
    table.write_text(json.dumps({"a::a0": 50, "a+++a1": 5, "a2": 7, "a3": 7, "a4": 1000, "b0": 3, "b1": 60, "b::b2": 0}))
    context = BuildContext(seed=0, cache_dir=None)  # type: ignore[arg-type]
    ordered = FrequencyOrdering(FrequencyParams(file=table), context)(CONCEPTS, 2)
    assert [c.classname for c in ordered] == ["b2", "b0", "a1", "a2", "a3", "a0", "b1", "a4"]
    backwards = FrequencyOrdering(FrequencyParams(file=table, reverse=True), context)(CONCEPTS, 2)
    assert backwards == list(reversed(ordered))
    csv_table = tmp_path / "counts.csv"
    csv_table.write_text("concept,count\n" + "\n".join(f"{c.classname},{i}" for i, c in enumerate(reversed(CONCEPTS))))
    assert FrequencyOrdering(FrequencyParams(file=csv_table), context)(CONCEPTS, 2) == list(reversed(CONCEPTS))

    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"a0": 2, "a1": 1}))
    with pytest.raises(FomoError, match="6 stream concepts have no count"):
        FrequencyOrdering(FrequencyParams(file=partial), context)(CONCEPTS, 2)
    with_default = FrequencyOrdering(FrequencyParams(file=partial, default_count=10), context)(CONCEPTS, 2)
    assert with_default[:2] == [Concept("a", "a1"), Concept("a", "a0")]
    (tmp_path / "bad.csv").write_text("name,n\nx,1\n")
    with pytest.raises(FomoError, match="expected a CSV with columns concept,count"):
        FrequencyOrdering(FrequencyParams(file=tmp_path / "bad.csv"), context)
    with pytest.raises(ValidationError, match="does not exist"):
        FrequencyParams(file=tmp_path / "none.json")
    FrequencyParams.model_validate({"file": str(tmp_path / "none.json")}, context={"schema_only": True})


def test_file_params_expand_environment_variables(tmp_path, monkeypatch):
    (tmp_path / "counts.json").write_text("{}")
    monkeypatch.setenv("FOMO_TEST_TABLES", str(tmp_path))
    assert FrequencyParams(file="${FOMO_TEST_TABLES}/counts.json").file == tmp_path / "counts.json"
    monkeypatch.delenv("FOMO_TEST_TABLES")
    with pytest.raises(ValidationError, match="environment variable FOMO_TEST_TABLES"):
        FrequencyParams(file="${FOMO_TEST_TABLES}/counts.json")


def angle(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_similarity_follows_the_nearest_neighbour_chain():
    concepts = [Concept("s", name) for name in ("c0", "c1", "c2", "c3", "c4")]
    # on a circle: c0 at 0, c2 at 20, c3 at 50, c1 at 100, c4 at 170 degrees
    model = LookupModel({"c0": angle(0), "c1": angle(100), "c2": angle(20), "c3": angle(50), "c4": angle(170)})
    dataset = ImageTextDataset("s", "adaptation", "classification", [c.classname for c in concepts], ["photo of {}"])
    context = context_with(model, [dataset])
    chain = SimilarityOrdering(SimilarityParams(prompt="name"), context)(concepts, 2)
    assert [c.classname for c in chain] == ["c0", "c2", "c3", "c1", "c4"]
    from_c4 = SimilarityOrdering(SimilarityParams(prompt="name", start="s+++c4"), context)(concepts, 2)
    assert [c.classname for c in from_c4] == ["c4", "c1", "c3", "c2", "c0"]
    backwards = SimilarityOrdering(SimilarityParams(prompt="name", reverse=True), context)(concepts, 2)
    assert backwards == list(reversed(chain))
    with pytest.raises(FomoError, match="'s::c9' is not a stream concept"):
        SimilarityOrdering(SimilarityParams(prompt="name", start="s::c9"), context)(concepts, 2)
    with pytest.raises(FomoError, match="needs the base model"):
        SimilarityOrdering(SimilarityParams(), context_with(None, [dataset]))


def test_performance_orders_easy_to_hard_by_zero_shot_accuracy():
    classes = ["k0", "k1", "k2"]
    model = LookupModel({name: [float(i == j) for j in range(3)] for i, name in enumerate(classes)}, image_vectors=torch.eye(3))
    # a test image's first pixel says which class the model sees in it: k0 4/4 right, k1 1/4, k2 2/4
    seen = [0, 0, 0, 0, 1, 2, 2, 0, 2, 2, 1, 0]
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    images = torch.tensor(seen, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    test = TensorSampleSet(images, torch.tensor(labels), [["x"]] * len(labels))
    dataset = ImageTextDataset("p", "adaptation", "classification", classes, ["{}"], train=test, test=test)
    concepts = dataset.concepts()
    model.train()
    ordering = PerformanceOrdering(PerformanceParams(batch_size=5), context_with(model, [dataset]))
    assert [c.classname for c in ordering(concepts, 3)] == ["k0", "k2", "k1"]
    assert model.training  # the model's mode is left as it was
    hard_first = PerformanceOrdering(PerformanceParams(reverse=True), context_with(model, [dataset]))(concepts, 3)
    assert [c.classname for c in hard_first] == ["k1", "k2", "k0"]


def test_model_orderings_on_the_synthetic_data_with_the_tiny_clip(tmp_path):
    torch.set_num_threads(1)
    pytest.importorskip("fomo_synthetic")
    pytest.importorskip("fomo_openclip")
    torch.manual_seed(0)
    context = BuildContext(seed=0, cache_dir=tmp_path)
    bundle = build_component("model", "tiny-clip", {}, context)
    context.image_size = bundle.image_size
    params = {
        "train_per_class": 2,
        "test_per_class": 3,
        "pool_train_per_class": 1,
        "retrieval_train": 8,
        "retrieval_test": 8,
        "adaptation": ["letters", "arrows", "relations"],
        "zero_shot": [],
    }
    datasets = build_component("dataset", "synthetic", params, context)
    context.datasets, context.bundle = {d.name: d for d in datasets}, bundle
    concepts = [c for d in datasets if d.role == "adaptation" for c in d.concepts()]
    for ordering in (SimilarityOrdering(SimilarityParams(), context), PerformanceOrdering(PerformanceParams(), context)):
        first, again = ordering(concepts, 4), ordering(concepts, 4)
        assert sorted(first) == sorted(concepts) and first == again
        assert len(stream_tasks(concepts, ordering, 4)) == 4
