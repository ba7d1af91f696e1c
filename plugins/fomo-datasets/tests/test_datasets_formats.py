"""Each on-disk format: what it builds, what it caches, and how bad input is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from fomo_datasets.caption_table import CaptionTableParams, build_caption_table
from fomo_datasets.fomo_in_flux import FomoInFluxParams, build_fomo_in_flux
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder
from fomo_datasets.testing import COLOURS, corrupt, save_picture, write_image_folder, write_shards
from fomo_datasets.webdataset_pool import WebDatasetParams, build_webdataset
from pydantic import ValidationError

from fomo_host.api import Concept, FomoError

DATA = Path(__file__).parent / "data"
SCHEMA_ONLY = {"schema_only": True}

# ----------------------------------------------------------------------------- image-folder


def test_image_folder_builds_classes_captions_and_a_memmap_cache(tmp_path, context):
    root = write_image_folder(tmp_path / "sat", ["forest", "river", "sea_lake"], {"train": 4, "test": 2})
    (tmp_path / "names.json").write_text(json.dumps({"sea_lake": "sea or lake"}))
    params = ImageFolderParams(
        name="sat",
        root=root,
        class_names=tmp_path / "names.json",
        templates=["a satellite photo of a {}."],
        caption_templates=["satellite imagery of {}.", "a {} seen from above."],
    )
    (dataset,) = build_image_folder(params, context(image_size=16))
    assert dataset.classnames == ["forest", "river", "sea or lake"] and dataset.role == "adaptation"
    assert len(dataset.train) == 12 and len(dataset.test) == 6
    assert dataset.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert dataset.train.images(torch.tensor([0, 11])).shape == (2, 3, 16, 16)
    assert set(dataset.train.captions(torch.tensor([8, 9, 10, 11]), torch.Generator().manual_seed(0))) <= {
        "satellite imagery of sea or lake.",
        "a sea or lake seen from above.",
    }
    assert dataset.concepts()[-1] == Concept("sat", "sea or lake") and dataset.info == {"skipped_images": 0}
    # red forest, green river: the decoded pixels are the folders' colours
    first = dataset.train.images(torch.tensor([0])).float().mean(dim=(2, 3))[0]
    assert first[0] > 150 and first[1] < 80
    # a second build reads the cache: same key, nothing decoded
    (again,) = build_image_folder(params, context(image_size=16))
    assert again.train.fingerprint() == dataset.train.fingerprint()
    assert len(list((tmp_path / "cache" / "fomo-datasets").iterdir())) == 2


def test_image_folder_roles_need_their_splits_and_folders_need_images(tmp_path, context):
    root = write_image_folder(tmp_path / "zs", ["a", "b"], {"test": 2})
    (dataset,) = build_image_folder(ImageFolderParams(name="zs", root=root, role="zero_shot"), context())
    assert dataset.train is None and len(dataset.test) == 4
    with pytest.raises(ValidationError, match="zs/train is not a folder"):
        ImageFolderParams(name="zs", root=root, role="adaptation")
    (root / "test" / "empty").mkdir()
    with pytest.raises(ValidationError, match="class folder .*empty holds no images"):
        ImageFolderParams(name="zs", root=root, role="zero_shot")
    with pytest.raises(ValidationError, match="missing is not a folder"):
        ImageFolderParams(name="zs", root=tmp_path / "missing", role="zero_shot")
    # schema-only validation does not look at the disk
    ImageFolderParams.model_validate({"name": "zs", "root": str(tmp_path / "missing")}, context=SCHEMA_ONLY)
    with pytest.raises(ValidationError, match="needs '\\{\\}'"):
        ImageFolderParams(name="zs", root=root, role="zero_shot", templates=["no slot"])


def test_paths_expand_environment_variables(tmp_path, context, monkeypatch):
    root = write_image_folder(tmp_path / "data" / "zs", ["a"], {"test": 1})
    monkeypatch.setenv("FOMO_TEST_DATA", str(tmp_path / "data"))
    params = ImageFolderParams(name="zs", root="${FOMO_TEST_DATA}/zs", role="zero_shot")
    assert params.root == root
    monkeypatch.delenv("FOMO_TEST_DATA")
    with pytest.raises(ValidationError, match="environment variable FOMO_TEST_DATA .* is not set"):
        ImageFolderParams(name="zs", root="${FOMO_TEST_DATA}/zs", role="zero_shot")
    ImageFolderParams.model_validate({"name": "zs", "root": "${FOMO_TEST_DATA}/zs"}, context=SCHEMA_ONLY)


def test_unreadable_images_are_skipped_and_counted_up_to_a_limit(tmp_path, context):
    root = write_image_folder(tmp_path / "sat", ["a", "b"], {"train": 10, "test": 2})
    corrupt(root / "train" / "a" / "001.jpg")
    corrupt(root / "train" / "b" / "003.jpg", "truncate")
    params = ImageFolderParams(name="sat", root=root, max_skipped_fraction=0.1)
    (dataset,) = build_image_folder(params, context())
    assert len(dataset.train) == 18 and dataset.info["skipped_images"] == 2
    assert any("001.jpg: " in line for line in dataset.info["skipped_files"])
    assert dataset.train.labels.tolist() == [0] * 9 + [1] * 9
    # above the limit the build stops, naming the files
    strict = ImageFolderParams(name="sat", root=root, max_skipped_fraction=0.05)
    with pytest.raises(FomoError, match=r"'sat' \(train\): 2 of 20 samples are unreadable .*a/001.jpg: UnidentifiedImageError"):
        build_image_folder(strict, context())


# ----------------------------------------------------------------------------- caption-table


def test_caption_table_csv_for_retrieval_groups_captions_per_image(tmp_path, context):
    images = tmp_path / "pairs" / "images"
    for n in range(4):
        save_picture(images / f"{n}.jpg", COLOURS["blue"], n)
    table = tmp_path / "pairs" / "test.csv"
    table.write_text(
        'image,caption\nimages/0.jpg,"a blue square, seen from above"\nimages/0.jpg,a second caption\n'
        "images/1.jpg,one\nimages/2.jpg,\nimages/3.jpg,three\nimages/missing.jpg,gone\n"
    )
    params = CaptionTableParams(name="pairs", role="zero_shot", test=table, max_skipped_fraction=0.5)
    (dataset,) = build_caption_table(params, context())
    assert dataset.task == "retrieval" and dataset.classnames == [] and len(dataset.test) == 3
    assert dataset.test.caption_choices[0] == ["a blue square, seen from above", "a second caption"]
    assert dataset.test.labels.tolist() == [-1, -1, -1]
    assert dataset.info["skipped_images"] == 2
    reasons = " ".join(dataset.info["skipped_files"])
    assert "2.jpg: no caption" in reasons and "missing.jpg: missing" in reasons


def test_caption_table_jsonl_with_classes_and_a_root(tmp_path, context):
    root = tmp_path / "photos"
    rows = []
    for n, colour in enumerate(["red", "green", "red", "green"]):
        save_picture(root / f"{n}.png", COLOURS[colour], n)
        rows.append({"file": f"{n}.png", "text": [f"a {colour} thing", f"{colour}!"], "label": colour})
    table = tmp_path / "tables" / "train.jsonl"
    table.parent.mkdir()
    table.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    test = tmp_path / "tables" / "test.jsonl"
    test.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n")
    params = CaptionTableParams(
        name="things",
        task="classification",
        train=table,
        test=test,
        root=root,
        image_column="file",
        caption_column="text",
        class_column="label",
        templates=["a photo of a {} thing."],
    )
    (dataset,) = build_caption_table(params, context())
    assert dataset.classnames == ["green", "red"] and dataset.train.labels.tolist() == [1, 0, 1, 0]
    assert dataset.train.caption_choices[0] == ["a red thing", "red!"] and len(dataset.test) == 2
    assert [str(c) for c in dataset.concepts()] == ["things::green", "things::red"]
    with pytest.raises(ValidationError, match="has no column 'caption'"):
        CaptionTableParams(name="things", train=table, test=test, root=root, image_column="file")
    with pytest.raises(ValidationError, match="needs class_column"):
        CaptionTableParams(name="things", task="classification", train=table, test=test, image_column="file", caption_column="text")
    with pytest.raises(ValidationError, match="needs a test table"):
        CaptionTableParams(name="things", train=table, image_column="file", caption_column="text")
    with pytest.raises(ValidationError, match="unknown table format '.txt'"):
        CaptionTableParams(name="things", role="zero_shot", test=tmp_path / "x.txt")


# ----------------------------------------------------------------------------- webdataset


def test_webdataset_streams_shards_once_with_a_sample_count(tmp_path, context):
    write_shards(tmp_path / "pool", shards=3, per_shard=6)
    params = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "pool-*.tar")], num_samples=14)
    (dataset,) = build_webdataset(params, context())
    assert dataset.role == "pretraining" and dataset.task == "retrieval" and dataset.test is None
    assert len(dataset.train) == 14 and dataset.train.labels.tolist() == [-1] * 14
    assert dataset.train.caption_choices[0] == ["a red patch", "something red"]
    assert dataset.train.caption_choices[1] == ["a photo of something green"]
    # brace patterns give the same shards; the whole pool without a count
    braces = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "pool-{000..002}.tar")])
    (whole,) = build_webdataset(braces, context())
    assert len(whole.train) == 18
    assert (whole.train.images(torch.arange(14)) == dataset.train.images(torch.arange(14))).all()
    too_many = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], num_samples=50)
    with pytest.raises(FomoError, match="the shards hold 18 samples, fewer than the 50 asked for"):
        build_webdataset(too_many, context())
    with pytest.raises(ValidationError, match="no shard matches"):
        WebDatasetParams(name="pool", shards=[str(tmp_path / "nowhere" / "*.tar")])


def test_webdataset_counts_bad_samples_and_names_a_damaged_shard(tmp_path, context):
    import webdataset

    shards = write_shards(tmp_path / "pool", shards=1, per_shard=8)
    with webdataset.TarWriter(str(tmp_path / "pool" / "pool-001.tar")) as writer:
        writer.write({"__key__": "bad-image", "jpg": b"not a jpeg", "txt": "broken"})
        writer.write({"__key__": "no-caption", "jpg": (DATA / "fomo_in_flux" / "DTD_classnames.json").read_bytes()})
    params = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], max_skipped_fraction=0.25)
    (dataset,) = build_webdataset(params, context())
    assert len(dataset.train) == 8 and dataset.info["skipped_images"] == 2
    assert "pool-001.tar:no-caption: no caption entry" in " ".join(dataset.info["skipped_files"])
    shutil.copy(shards[0], tmp_path / "cut.tar")
    data = (tmp_path / "cut.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(FomoError, match="shard .*cut.tar is not a readable tar file"):
        build_webdataset(WebDatasetParams(name="cut", shards=[str(tmp_path / "cut.tar")]), context())


# ----------------------------------------------------------------------------- fomo-in-flux


def test_fomo_in_flux_reads_the_benchmarks_info_files(fomo_in_flux, context):
    params = FomoInFluxParams(
        root=fomo_in_flux,
        info_dir=fomo_in_flux / "00_info",
        datasets=[
            {"name": "DTD"},
            {"name": "FSCOCO", "task": "retrieval"},
        ],
    )
    dtd, fscoco = build_fomo_in_flux(params, context())
    classnames = json.loads((DATA / "fomo_in_flux" / "DTD_classnames.json").read_text())
    assert dtd.classnames == classnames and dtd.templates == ["A photo of a {} texture."]
    assert len(dtd.train) == 12 and len(dtd.test) == 12 and sorted(set(dtd.train.labels.tolist())) == [0, 1, 2, 3]
    # the paper's training text: synthetic_merged_caption where there is no default_caption
    info = json.loads((DATA / "fomo_in_flux" / "DTD_train.sample.json").read_text())
    assert dtd.train.caption_choices[0] == next(iter(info.values()))["synthetic_merged_caption"]
    # concepts are named like the paper's stream files
    assert Concept.parse("DTD+++banded") in dtd.concepts()
    assert fscoco.task == "retrieval" and fscoco.train.caption_choices[1] == ["A sketch of Few cows are sitting on the grass."]
    assert "cow" in fscoco.classnames  # its targets still name concepts for the stream

    other_field = params.model_copy(update={"caption_fields": ["synthetic_caption"], "datasets": params.datasets[:1]})
    (dtd_synthetic,) = build_fomo_in_flux(other_field, context())
    assert dtd_synthetic.train.caption_choices[0] == ["white and pink stripes wallpaper in a gradient pattern"]


def test_fomo_in_flux_class_names_file_and_info_files(fomo_in_flux, context):
    ai2d = {"name": "AI2DIAGRAMS", "role": "zero_shot"}
    params = FomoInFluxParams(root=fomo_in_flux, info_dir=fomo_in_flux / "00_info", datasets=[ai2d])
    # without a classnames file: the classes its images name, in target order
    (dataset,) = build_fomo_in_flux(params, context())
    assert dataset.classnames[:2] == ["circuits diagram", "life cycles diagram"] and len(dataset.classnames) == 4
    assert set(dataset.test.labels.tolist()) == {0, 1, 2, 3}
    names = [f"diagram type {i}" for i in range(13)]
    names[12] = "diagram of sub-types or different forms of something"
    (fomo_in_flux / "00_info" / "AI2DIAGRAMS_classnames.json").write_text(json.dumps(names))
    (dataset,) = build_fomo_in_flux(params, context())
    assert dataset.classnames == names and 12 in dataset.test.labels.tolist()
    assert dataset.templates == ["A photo of a {}."] and dataset.train is None and len(dataset.test) == 12
    with pytest.raises(ValidationError, match="AI2DIAGRAMS_train.json does not exist"):
        FomoInFluxParams(root=fomo_in_flux, info_dir=fomo_in_flux / "00_info", datasets=[{"name": "AI2DIAGRAMS"}])
    with pytest.raises(ValidationError, match="listed twice"):
        FomoInFluxParams(root=fomo_in_flux, info_dir=fomo_in_flux / "00_info", datasets=[ai2d, ai2d])
