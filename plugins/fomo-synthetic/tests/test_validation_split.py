"""The validation split: drawn from its own random stream, so it is disjoint from train and test, deterministic, and
leaves train and test exactly as they are without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from fomo_synthetic.build import build_synthetic_datasets
from fomo_synthetic.params import SyntheticParams

from fomo_host.api import BuildContext, ImageTextDataset

SMALL = dict(pool_train_per_class=4, train_per_class=3, test_per_class=2, retrieval_train=8, retrieval_test=6, cache=False)


def build(seed: int = 0, **overrides: Any) -> list[ImageTextDataset]:
    return build_synthetic_datasets(SyntheticParams(**(SMALL | overrides)), BuildContext(seed=seed, cache_dir=Path("/nonexistent")))


def rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_every_evaluated_set_gets_a_validation_split_disjoint_from_train_and_test():
    for dataset in build(validation_per_class=3):
        if dataset.role == "pretraining":
            continue
        assert dataset.validation is not None and dataset.test is not None
        size = len(dataset.test) // 2 * 3 if dataset.task == "classification" else len(dataset.test)
        assert len(dataset.validation) == size, dataset.name
        held_out = rows(dataset.validation.image_tensor)
        assert not held_out & rows(dataset.test.image_tensor), dataset.name
        if dataset.train is not None:
            assert not held_out & rows(dataset.train.image_tensor), dataset.name


def test_the_validation_split_is_deterministic_and_changes_nothing_else():
    first, again, without = build(validation_per_class=3), build(validation_per_class=3), build()
    for a, b, plain in zip(first, again, without, strict=True):
        assert a.validation is not None and torch.equal(a.validation.image_tensor, b.validation.image_tensor)
        assert torch.equal(a.validation.labels, b.validation.labels)
        assert plain.validation is None
        assert torch.equal(a.test.image_tensor, plain.test.image_tensor) and torch.equal(a.test.labels, plain.test.labels)
        if a.train is not None:
            assert torch.equal(a.train.image_tensor, plain.train.image_tensor)
    other_seed = build(seed=1, validation_per_class=3)
    assert not torch.equal(other_seed[-1].validation.image_tensor, first[-1].validation.image_tensor)
