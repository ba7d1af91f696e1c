"""The validation split of file-based sources (``validation_fraction``): a seeded carve of the training data (test data
for sets that read no training split), disjoint from train and test, the same for the same seed and files whatever
order they are listed in, and recorded in the dataset's info."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from fomo_datasets.caption_table import CaptionTableParams, build_caption_table
from fomo_datasets.fomo_in_flux import FomoInFluxParams, build_fomo_in_flux
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder
from fomo_datasets.splits import carve_positions
from fomo_datasets.testing import COLOURS, save_picture, write_image_folder, write_shards
from fomo_datasets.webdataset_pool import WebDatasetParams, build_webdataset
from pydantic import ValidationError

from fomo_host.api import ImageTextDataset, SampleSet


def pixels(samples: SampleSet | None) -> set[bytes]:
    assert samples is not None
    return {image.numpy().tobytes() for image in samples.images(torch.arange(len(samples)))}


def assert_disjoint(dataset: ImageTextDataset, from_test: bool = True) -> None:
    held_out = pixels(dataset.validation)
    assert held_out and not (from_test and held_out & pixels(dataset.test))
    if dataset.train is not None:
        assert not held_out & pixels(dataset.train)


def test_image_folder_carves_each_class_of_the_training_split(tmp_path, context):
    root = write_image_folder(tmp_path / "sat", ["forest", "river", "sea"], {"train": 8, "test": 3})
    (plain,) = build_image_folder(ImageFolderParams(name="sat", root=root), context())
    params = ImageFolderParams(name="sat", root=root, validation_fraction=0.25, validation_seed=3)
    (dataset,) = build_image_folder(params, context())
    assert dataset.validation is not None and dataset.train is not None and dataset.test is not None
    # 2 of each class's 8 training images; the test split untouched
    assert dataset.validation.labels.tolist() == [0, 0, 1, 1, 2, 2] and len(dataset.train) == 18
    assert sorted(dataset.train.labels.tolist()) == [0] * 6 + [1] * 6 + [2] * 6
    assert dataset.test.fingerprint() == plain.test.fingerprint()
    assert_disjoint(dataset)
    assert pixels(dataset.train) | pixels(dataset.validation) == pixels(plain.train)
    assert dataset.info["validation"] == {"fraction": 0.25, "seed": 3, "carved_from": "train"}
    # the same images on a second construction; another seed takes others
    (again,) = build_image_folder(params, context(cache="other-cache"))
    assert again.validation is not None and again.validation.fingerprint() == dataset.validation.fingerprint()
    (reseeded,) = build_image_folder(params.model_copy(update={"validation_seed": 4}), context())
    assert reseeded.validation is not None and pixels(reseeded.validation) != pixels(dataset.validation)
    # without a fraction: no validation split, the splits as before
    assert plain.validation is None and "validation" not in plain.info


def test_the_carve_follows_names_not_the_listing_order():
    names = [f"class{label}/{n:03d}.jpg" for label in range(3) for n in range(10)]
    labels = [label for label in range(3) for _ in range(10)]
    carved = {names[position] for position in carve_positions(labels, names, 0.3, seed=0)}
    assert len(carved) == 9 and all(sum(name.startswith(f"class{label}/") for name in carved) == 3 for label in range(3))
    for shuffle in range(3):
        order = list(range(len(names)))
        random.Random(shuffle).shuffle(order)
        shuffled = carve_positions([labels[i] for i in order], [names[i] for i in order], 0.3, seed=0)
        assert {names[order[position]] for position in shuffled} == carved
    assert {names[position] for position in carve_positions(labels, names, 0.3, seed=1)} != carved
    # at least one per class, never a whole class; a class of one image gives none
    assert len(carve_positions([0, 0, 1], ["a", "b", "c"], 0.01, seed=0)) == 1
    assert carve_positions([0, 0], ["a", "b"], 0.5, seed=0) in ([0], [1])


def write_table(folder: Path, rows: list[str], name: str) -> Path:
    path = folder / name
    path.write_text("image,caption,label\n" + "\n".join(rows) + "\n")
    return path


def test_caption_table_carve_is_the_same_whatever_the_row_order(tmp_path, context):
    folder = tmp_path / "table"
    rows = []
    for n, colour in enumerate(list(COLOURS)[:3] * 6):
        save_picture(folder / "images" / f"{n:02d}.jpg", COLOURS[colour], 200 + n)
        rows.append(f"images/{n:02d}.jpg,a photo of something {colour},{colour}")
    test_rows = []
    for n, colour in enumerate(list(COLOURS)[:3] * 2):
        save_picture(folder / "held" / f"{n:02d}.jpg", COLOURS[colour], 900 + n)
        test_rows.append(f"held/{n:02d}.jpg,a photo of something {colour},{colour}")
    shuffled = list(rows)
    random.Random(0).shuffle(shuffled)
    test = write_table(folder, test_rows, "test.csv")
    built = []
    for name, listed in (("train.csv", rows), ("shuffled.csv", shuffled)):
        params = CaptionTableParams(
            name="reports", task="classification", class_column="label", train=write_table(folder, listed, name), test=test,
            validation_fraction=0.2,
        )  # fmt: skip
        (dataset,) = build_caption_table(params, context())
        assert_disjoint(dataset)
        built.append(dataset)
    first, second = built
    assert first.validation is not None and second.validation is not None
    assert len(first.validation) == 3 and first.validation.labels.tolist() == second.validation.labels.tolist()
    assert first.validation.fingerprint() == second.validation.fingerprint()
    assert torch.equal(first.validation.images(torch.arange(3)), second.validation.images(torch.arange(3)))
    assert pixels(first.train) == pixels(second.train)


def test_a_set_without_a_training_split_carves_its_test_split(tmp_path, context):
    root = write_image_folder(tmp_path / "zs", ["a", "b"], {"test": 6})
    (dataset,) = build_image_folder(ImageFolderParams(name="zs", root=root, role="zero_shot", validation_fraction=0.34), context())
    assert dataset.train is None and dataset.validation is not None and dataset.test is not None
    assert len(dataset.validation) == 4 and len(dataset.test) == 8
    assert_disjoint(dataset)
    assert dataset.info["validation"] == {"fraction": 0.34, "seed": 0, "carved_from": "test"}


def test_webdataset_and_fomo_in_flux_carve_too(tmp_path, context, fomo_in_flux):
    write_shards(tmp_path / "shards", shards=2, per_shard=10)
    write_shards(tmp_path / "test-shards", shards=1, per_shard=6, start=100)
    params = WebDatasetParams(
        name="pairs",
        role="adaptation",
        shards=[str(tmp_path / "shards" / "*.tar")],
        test_shards=[str(tmp_path / "test-shards" / "*.tar")],
        validation_fraction=0.2,
    )
    (pairs,) = build_webdataset(params, context())
    assert pairs.validation is not None and pairs.train is not None
    assert len(pairs.validation) == 4 and len(pairs.train) == 16
    assert_disjoint(pairs)
    (again,) = build_webdataset(params, context())
    assert again.validation is not None and again.validation.fingerprint() == pairs.validation.fingerprint()
    # the pool's own entry (all of its first samples) is not the carved one
    (whole,) = build_webdataset(params.model_copy(update={"validation_fraction": 0.0}), context())
    assert whole.train is not None and whole.train.fingerprint() != pairs.train.fingerprint() and whole.validation is None

    flux = FomoInFluxParams(root=fomo_in_flux, info_dir=fomo_in_flux / "00_info", datasets=[{"name": "DTD"}], validation_fraction=0.25)
    (dtd,) = build_fomo_in_flux(flux, context())
    assert dtd.validation is not None and dtd.train is not None and len(dtd.validation) + len(dtd.train) == 12
    assert_disjoint(dtd, from_test=False)  # the fixture's test images repeat its training pixels (other files)
    assert dtd.info["validation"] == {"fraction": 0.25, "seed": 0, "carved_from": "train"}
    # the info file's keys in another order: the same validation split
    info_file = fomo_in_flux / "00_info" / "DTD_train.json"
    entries = list(json.loads(info_file.read_text()).items())
    info_file.write_text(json.dumps(dict(reversed(entries))))
    (reordered,) = build_fomo_in_flux(flux, context())
    assert reordered.validation is not None and reordered.validation.fingerprint() == dtd.validation.fingerprint()


def test_a_fraction_is_refused_where_it_cannot_serve(tmp_path):
    root = write_image_folder(tmp_path / "pool", ["a"], {"train": 2})
    with pytest.raises(ValidationError, match="a pretraining set is never evaluated"):
        ImageFolderParams(name="pool", root=root, role="pretraining", validation_fraction=0.1)
    with pytest.raises(ValidationError, match="less than or equal to 0.5"):
        ImageFolderParams(name="pool", root=root, role="pretraining", validation_fraction=0.9)
