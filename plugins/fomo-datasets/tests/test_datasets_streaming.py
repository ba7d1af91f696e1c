"""Streamed sets (cache = "stream") equal their decoded twins; shard indexes catch cut shards; GPU decoding is refused
off CUDA and close to Pillow on its code path; long decodes report progress to the host."""

from __future__ import annotations

import pickle
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from fomo_datasets.caption_table import CaptionTableParams, build_caption_table
from fomo_datasets.decoding import decode_image
from fomo_datasets.fomo_in_flux import FomoInFluxParams, build_fomo_in_flux
from fomo_datasets.image_folder import ImageFolderParams, build_image_folder
from fomo_datasets.streaming import StreamedSampleSet, decode_on_device
from fomo_datasets.tar_index import ShardIndexCache
from fomo_datasets.testing import corrupt, encoded, write_image_folder, write_shards
from fomo_datasets.webdataset_pool import WebDatasetParams, build_webdataset
from pydantic import ValidationError

from fomo_host.api import FomoError

SIZE = 16


def both(build, params, context):
    """The datasets a component builds with the decoded cache and streamed."""
    decoded = build(params.model_copy(update={"cache": "decoded"}), context(SIZE))
    streamed = build(params.model_copy(update={"cache": "stream"}), context(SIZE))
    return decoded, streamed


def assert_twins(decoded, streamed) -> None:
    for left, right in zip(decoded, streamed, strict=True):
        for split in ("train", "test"):
            a, b = getattr(left, split), getattr(right, split)
            if a is None:
                assert b is None
                continue
            assert isinstance(b, StreamedSampleSet)
            everything = torch.arange(len(a))
            assert len(a) == len(b) and torch.equal(a.labels, b.labels)
            assert [list(c) for c in a.caption_choices] == [list(c) for c in b.caption_choices]
            assert torch.equal(a.images(everything), b.images(everything))
            assert a.fingerprint() == b.fingerprint()  # the warm start's cache serves both
            generator = torch.Generator().manual_seed(1)
            assert a.captions(everything, generator) == b.captions(everything, torch.Generator().manual_seed(1))
            assert a.all_captions(everything) == b.all_captions(everything) == [list(c) for c in a.caption_choices]
        assert left.info["skipped_images"] == right.info["skipped_images"]


def test_every_format_streams_the_images_its_cache_holds(tmp_path, context, fomo_in_flux):
    folder = write_image_folder(tmp_path / "sat", ["forest", "river"], {"train": 5, "test": 2})
    corrupt(folder / "train" / "river" / "001.jpg")  # unreadable: skipped and counted the same way
    tolerant = {"max_skipped_fraction": 0.2}
    assert_twins(*both(build_image_folder, ImageFolderParams(name="sat", root=folder, **tolerant), context))

    table = tmp_path / "table.csv"
    rows = [f"{path},forest number {n}" for n, path in enumerate(sorted((folder / "train" / "forest").iterdir()))]
    table.write_text("image,caption\n" + "\n".join(rows) + "\n")
    assert_twins(*both(build_caption_table, CaptionTableParams(name="tab", train=table, test=table), context))

    write_shards(tmp_path / "pool", shards=2, per_shard=5)
    pool = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], num_samples=8)
    assert_twins(*both(build_webdataset, pool, context))

    flux = FomoInFluxParams(root=fomo_in_flux, info_dir=fomo_in_flux / "00_info", datasets=[{"name": "DTD"}])
    assert_twins(*both(build_fomo_in_flux, flux, context))


def test_streamed_sets_pickle_for_loader_workers_started_by_spawn(tmp_path, context):
    write_shards(tmp_path / "pool", shards=2, per_shard=3)
    params = WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], cache="stream")
    (pool,) = build_webdataset(params, context(SIZE))
    pool.train.images(torch.arange(6))  # opens the shards: open files must not travel
    copy = pickle.loads(pickle.dumps(pool.train))
    assert torch.equal(copy.images(torch.tensor([5, 0, 3])), pool.train.images(torch.tensor([5, 0, 3])))


def test_a_streamed_image_that_fails_to_decode_stops_with_one_line_naming_it(tmp_path, context):
    folder = write_image_folder(tmp_path / "sat", ["forest"], {"train": 4})
    damaged = folder / "train" / "forest" / "001.jpg"
    damaged.write_bytes(damaged.read_bytes()[:-300])  # a whole header: only decoding finds the damage
    params = ImageFolderParams(name="sat", root=folder, role="pretraining", cache="stream")
    (dataset,) = build_image_folder(params, context(SIZE))
    assert len(dataset.train) == 4
    with pytest.raises(FomoError, match=r"^dataset 'sat' \(train\): .*forest/001.jpg: .*truncated.*cache = 'decoded'") as raised:
        dataset.train.images(torch.arange(4))
    assert "\n" not in str(raised.value)


# ----------------------------------------------------------------------------- shards


def members(shard: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(shard) as archive:
        return {info.name: info for info in archive}


def test_a_shard_cut_between_two_samples_is_named_not_read_as_a_shorter_shard(tmp_path, context):
    (shard,) = write_shards(tmp_path / "pool", shards=1, per_shard=6)
    whole = shard.read_bytes()
    fourth = members(shard)["000003.jpg"]
    shard.write_bytes(whole[: fourth.offset])  # the first three samples intact, the rest gone
    for cache in ("decoded", "stream"):
        params = WebDatasetParams(name="pool", shards=[str(shard)], cache=cache)
        message = r"shard .*pool-000.tar ends without the end-of-archive blocks after sample 000002 \(3 whole samples\): the file was cut"
        with pytest.raises(FomoError, match=message):
            build_webdataset(params, context(SIZE))
    # cut inside a member
    shard.write_bytes(whole[: fourth.offset_data + fourth.size // 2])
    message = r"shard .*pool-000.tar is not a readable tar file \(unexpected end of data\) at sample 000003, after 3 whole samples"
    with pytest.raises(FomoError, match=message):
        build_webdataset(WebDatasetParams(name="pool", shards=[str(shard)]), context(SIZE))


def test_shard_indexes_are_cached_and_checked_against_the_shard(tmp_path):
    first, second = write_shards(tmp_path / "pool", shards=2, per_shard=3)
    cache = ShardIndexCache(tmp_path / "cache")
    index = cache.get(first)
    assert index.keys == ["000000", "000001", "000002"] and set(index.members[0]) == {"jpg", "json"}
    assert index.read(1, "txt") == b"a photo of something green"
    assert cache.cached(first) is not None and cache.cached(second) is None
    second.replace(first)  # another shard in its place: other size or time, so indexed again
    assert cache.cached(first) is None
    assert cache.get(first).keys == ["000003", "000004", "000005"]


# ----------------------------------------------------------------------------- GPU decoding


def test_gpu_decoding_is_refused_off_cuda_and_asks_for_streaming(tmp_path, context):
    folder = write_image_folder(tmp_path / "sat", ["forest"], {"train": 2})
    with pytest.raises(ValidationError, match="decode = 'gpu' applies to streamed images"):
        ImageFolderParams(name="sat", root=folder, role="pretraining", decode="gpu")
    params = ImageFolderParams(name="sat", root=folder, role="pretraining", cache="stream", decode="gpu")
    with pytest.raises(FomoError, match=r"^dataset 'sat' \(train\): decode = 'gpu' needs a CUDA device, and this run is on cpu"):
        build_image_folder(params, context(SIZE))


def test_the_device_decoding_path_gives_pillows_images_within_jpeg_tolerance():
    # the code path of decode = 'gpu', run on the CPU device: torchvision's JPEG decoder, crop and resize on tensors
    colours = [(220, 30, 30), (30, 200, 40), (30, 60, 220)]
    jpegs = [encoded(colour, seed) for seed, colour in enumerate(colours)]
    already = torch.from_numpy(decode_image(encoded((240, 240, 240), 9, "PNG"), SIZE))
    images = decode_on_device([*jpegs, already], [0, 1, 2, 3], SIZE, torch.device("cpu"), str, "dataset 'x'")
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.uint8
    assert torch.equal(images[3], already)
    pillow = torch.stack([torch.from_numpy(decode_image(data, SIZE)) for data in jpegs])
    difference = (images[:3].float() - pillow.float()).abs()
    assert difference.mean() < 3 and difference.max() < 40
    with pytest.raises(FomoError, match=r"dataset 'x': 1: JPEG decoding on cpu failed"):
        decode_on_device([jpegs[0], jpegs[1][:200] + b"\x00" * 10], [0, 1], SIZE, torch.device("cpu"), str, "dataset 'x'")


# ----------------------------------------------------------------------------- progress


class RecordingProgress:
    def __init__(self) -> None:
        self.bars: list[list[object]] = []

    @contextmanager
    def __call__(self, description: str, total: int):
        record: list[object] = [description, total, 0]
        self.bars.append(record)

        class Bar:
            def advance(self, amount: int = 1, note: str | None = None) -> None:
                record[2] += amount  # type: ignore[operator]

        yield Bar()


@pytest.mark.parametrize("cache", ["decoded", "stream"])
def test_a_first_decode_reports_progress_through_the_build_context(tmp_path, context, cache):
    folder = write_image_folder(tmp_path / "sat", ["forest", "river"], {"train": 3, "test": 2})
    write_shards(tmp_path / "pool", shards=2, per_shard=3)
    progress = RecordingProgress()
    built = context(SIZE)
    built.progress = progress
    build_image_folder(ImageFolderParams(name="sat", root=folder, cache=cache), built)
    build_webdataset(WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], cache=cache), built)
    verb = "decoding" if cache == "decoded" else "checking"
    assert progress.bars == [
        [f"dataset 'sat' (train): {verb} images", 6, 6],
        [f"dataset 'sat' (test): {verb} images", 4, 4],
        ["dataset 'pool' (train): indexing shards", 2, 2],
        [f"dataset 'pool' (train): {verb} images", 6, 6],
    ]
    progress.bars.clear()  # built again: everything comes from the caches, no bar
    build_image_folder(ImageFolderParams(name="sat", root=folder, cache=cache), built)
    build_webdataset(WebDatasetParams(name="pool", shards=[str(tmp_path / "pool" / "*.tar")], cache=cache), built)
    assert progress.bars == []
