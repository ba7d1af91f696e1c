"""Every dataset format passes the dataset conformance suite, decoded into the cache and streamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fomo_datasets.testing import write_image_folder, write_shards

from fomo_host.testing import DatasetConformance


def caption_table(folder: Path) -> Path:
    """A CSV of image paths and captions over an image folder's training images."""
    rows = [f"{path},{path.parent.name} picture number {n}" for n, path in enumerate(sorted((folder / "train").rglob("*.*")))]
    table = folder / "table.csv"
    table.write_text("image,caption\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return table


class TestImageFolder(DatasetConformance):
    dataset_name = "image-folder"

    def params(self, tmp_path: Path) -> dict[str, Any]:
        root = write_image_folder(tmp_path / "sat", ["forest", "river", "sea"], {"train": 3, "test": 2})
        return {"name": "sat", "root": str(root)}

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any]:
        return {"name": "sat", "root": str(tmp_path / "no-such-folder")}


class TestImageFolderStreamed(TestImageFolder):
    def params(self, tmp_path: Path) -> dict[str, Any]:
        return {**super().params(tmp_path), "cache": "stream"}


class TestCaptionTable(DatasetConformance):
    dataset_name = "caption-table"

    def params(self, tmp_path: Path) -> dict[str, Any]:
        table = caption_table(write_image_folder(tmp_path / "pictures", ["forest", "river"], {"train": 3}))
        return {"name": "pairs", "train": str(table), "test": str(table)}

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any]:
        return {"name": "pairs", "train": str(tmp_path / "missing.csv"), "test": str(tmp_path / "missing.csv")}


class TestWebDataset(DatasetConformance):
    dataset_name = "webdataset"

    def params(self, tmp_path: Path) -> dict[str, Any]:
        write_shards(tmp_path / "pool", shards=2, per_shard=4)
        return {"name": "pool", "shards": [str(tmp_path / "pool" / "*.tar")], "num_samples": 6}

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any]:
        return {"name": "pool", "shards": [str(tmp_path / "nowhere" / "pool-000.tar")]}


class TestWebDatasetStreamed(TestWebDataset):
    def params(self, tmp_path: Path) -> dict[str, Any]:
        return {**super().params(tmp_path), "cache": "stream"}


class TestFomoInFlux(DatasetConformance):
    dataset_name = "fomo-in-flux"

    @pytest.fixture
    def dataset_params(self, fomo_in_flux: Path) -> dict[str, Any]:
        datasets = [{"name": "DTD"}, {"name": "FSCOCO", "task": "retrieval"}, {"name": "AI2DIAGRAMS", "role": "zero_shot"}]
        return {"root": str(fomo_in_flux), "info_dir": str(fomo_in_flux / "00_info"), "datasets": datasets}

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any]:
        return {"root": str(tmp_path / "nowhere"), "info_dir": str(tmp_path / "nowhere" / "00_info"), "datasets": [{"name": "DTD"}]}
