"""Conformance tests for dataset components: subclass :class:`DatasetConformance` in your plugin's tests.

::

    from fomo_host.testing import DatasetConformance

    class TestMyFormat(DatasetConformance):
        dataset_name = "my-format"

        def params(self, tmp_path):
            write_my_files(tmp_path)
            return {"name": "mine", "root": str(tmp_path)}

        def bad_path_params(self, tmp_path):
            return {"name": "mine", "root": str(tmp_path / "missing")}

A subclass gets: the component builds named datasets with the splits their role needs
(pretraining: train; adaptation: train and test; zero-shot: test); images are uint8
``[N, 3, S, S]`` at the model's resolution; labels index the class names (-1 only
without a class); every sample has captions; adaptation sets yield concepts of their
own classes; classification sets have caption templates with ``{}``; two builds agree;
and a path that does not exist is one clear line when the spec is checked, while
``validate --schema-only`` (no files looked at) accepts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from pydantic import ValidationError

from ..components import BuildContext
from ..data import ImageTextDataset
from ..spec import format_validation_error
from .helpers import build_component, validate_params

NEEDED_SPLITS = {"pretraining": ("train",), "adaptation": ("train", "test"), "zero_shot": ("test",)}


class DatasetConformance:
    """The conformance suite of the ``dataset`` kind; set ``dataset_name`` and give :meth:`params` in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    dataset_name: ClassVar[str] = ""
    image_size: ClassVar[int] = 16

    def params(self, tmp_path: Path) -> dict[str, Any]:
        """The params of a small dataset, after writing its files under ``tmp_path``."""
        raise NotImplementedError("give the params of a small dataset (writing its files under tmp_path)")

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any] | None:
        """Params naming a file or folder that does not exist; None when the component reads no path."""
        return None

    def build(self, params: dict[str, Any], cache_dir: Path) -> list[ImageTextDataset]:
        context = BuildContext(seed=0, cache_dir=cache_dir, image_size=self.image_size)
        datasets: list[ImageTextDataset] = build_component("dataset", self.dataset_name, params, context)
        return datasets

    @pytest.fixture
    def dataset_params(self, tmp_path: Path) -> dict[str, Any]:
        """The params of the tests' dataset: :meth:`params` by default; override this fixture to use other fixtures."""
        return self.params(tmp_path / "data")

    @pytest.fixture
    def datasets(self, dataset_params: dict[str, Any], tmp_path: Path) -> list[ImageTextDataset]:
        return self.build(dataset_params, tmp_path / "cache")

    def test_builds_named_datasets_with_the_splits_their_role_needs(self, datasets: list[ImageTextDataset]) -> None:
        assert datasets and all(isinstance(dataset, ImageTextDataset) for dataset in datasets)
        names = [dataset.name for dataset in datasets]
        assert len(set(names)) == len(names), f"dataset names repeat: {names}"
        for dataset in datasets:
            for split in NEEDED_SPLITS[dataset.role]:
                samples = getattr(dataset, split)
                assert samples is not None and len(samples) > 0, f"{dataset.name}: a {dataset.role} set needs a {split} split"

    def test_images_labels_and_captions(self, datasets: list[ImageTextDataset]) -> None:
        size = self.image_size
        for dataset in datasets:
            for split in ("train", "test"):
                samples = getattr(dataset, split)
                if samples is None:
                    continue
                where = f"{dataset.name} ({split})"
                indices = torch.arange(min(len(samples), 5))
                images = samples.images(indices)
                assert images.dtype == torch.uint8 and tuple(images.shape) == (len(indices), 3, size, size), f"{where}: {images.shape}"
                labels = samples.labels
                assert labels.dtype == torch.int64 and labels.shape == (len(samples),), where
                assert int(labels.min()) >= -1 and int(labels.max()) < len(dataset.classnames), f"{where}: labels out of range"
                if dataset.task == "classification":
                    assert int(labels.min()) >= 0, f"{where}: a classification sample without a class"
                captions = samples.captions(indices, torch.Generator().manual_seed(0))
                assert len(captions) == len(indices) and all(isinstance(c, str) and c.strip() for c in captions), where
                every = samples.all_captions(indices)
                assert all(choices and caption in choices for choices, caption in zip(every, captions, strict=True)), where

    def test_concepts_and_templates(self, datasets: list[ImageTextDataset]) -> None:
        for dataset in datasets:
            if dataset.task == "classification":
                assert dataset.classnames and dataset.templates, dataset.name
                assert all("{}" in template for template in dataset.templates), f"{dataset.name}: a template without {{}}"
            if dataset.role == "adaptation":
                concepts = dataset.concepts()
                assert concepts, f"{dataset.name}: an adaptation set gives the stream no concept"
                assert all(concept.dataset == dataset.name for concept in concepts)
                assert all(concept.classname is None or concept.classname in dataset.classnames for concept in concepts)

    def test_two_builds_agree(self, tmp_path: Path, dataset_params: dict[str, Any], datasets: list[ImageTextDataset]) -> None:
        again = self.build(dataset_params, tmp_path / "another-cache")
        assert [d.name for d in again] == [d.name for d in datasets]
        for first, second in zip(datasets, again, strict=True):
            assert first.classnames == second.classnames
            for split in ("train", "test"):
                a, b = getattr(first, split), getattr(second, split)
                if a is None:
                    continue
                indices = torch.arange(min(len(a), 5))
                assert torch.equal(a.images(indices), b.images(indices)) and torch.equal(a.labels, b.labels), f"{first.name} ({split})"

    def test_a_missing_path_is_one_clear_line(self, tmp_path: Path) -> None:
        bad = self.bad_path_params(tmp_path)
        if bad is None:
            pytest.skip("the component reads no path")
        with pytest.raises(ValidationError) as caught:
            validate_params("dataset", self.dataset_name, bad)
        message = format_validation_error(caught.value, prefix="data.sources.0.params")
        assert "\n" not in message and message.startswith("data.sources.0.params"), message
        validate_params("dataset", self.dataset_name, bad, schema_only=True)
