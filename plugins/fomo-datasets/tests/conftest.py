"""Small data on disk, written the way users keep theirs: class folders, caption tables, tar shards, FoMo-in-Flux info files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fomo_datasets.testing import COLOURS, save_picture

from fomo_host.api import BuildContext

DATA = Path(__file__).parent / "data"


@pytest.fixture
def context(tmp_path: Path) -> Callable[..., BuildContext]:
    def make(image_size: int = 16, cache: str = "cache") -> BuildContext:
        return BuildContext(seed=0, cache_dir=tmp_path / cache, image_size=image_size)

    return make


@pytest.fixture
def fomo_in_flux(tmp_path: Path) -> Path:
    """The copied FoMo-in-Flux samples as a data root: info files (a test split derived from the train sample) and images."""
    root = tmp_path / "fomo"
    info = root / "00_info"
    info.mkdir(parents=True)
    dtd_train = json.loads((DATA / "fomo_in_flux" / "DTD_train.sample.json").read_text())
    dtd_test = {key.replace("/images/", "/test_images/"): value for key, value in dtd_train.items()}
    ai2d_test = json.loads((DATA / "fomo_in_flux" / "AI2DIAGRAMS_test.sample.json").read_text())
    fscoco = json.loads((DATA / "fomo_in_flux" / "FSCOCO_train.sample.json").read_text())
    fscoco_test = {key.replace("raster_sketches", "test_sketches"): value for key, value in fscoco.items()}
    files = {
        "DTD_train.json": dtd_train,
        "DTD_test.json": dtd_test,
        "AI2DIAGRAMS_test.json": ai2d_test,
        "FSCOCO_train.json": fscoco,
        "FSCOCO_test.json": fscoco_test,
    }
    for name, content in files.items():
        (info / name).write_text(json.dumps(content, indent=1))
        for n, (key, value) in enumerate(content.items()):
            save_picture(root / key, list(COLOURS.values())[value["target"] % len(COLOURS)], n)
    (info / "DTD_classnames.json").write_text((DATA / "fomo_in_flux" / "DTD_classnames.json").read_text())
    return root
