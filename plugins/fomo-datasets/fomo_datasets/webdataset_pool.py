"""``webdataset``: WebDataset tar shards (image + caption per key), e.g. the pretraining replay pool.

Each shard is indexed once (its members' offsets, WebDataset's grouping of
members into samples; see :mod:`.tar_index`), which also proves the shard whole:
a shard cut short is an error naming it, never a shorter pool. Then each
sample's image is decoded into the memory-mapped cache and its captions are kept
with it, so later runs read neither the tars nor the JPEGs again; or, with
``cache = "stream"``, the images stay in the shards and are read by offset and
decoded when a batch uses them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from braceexpand import braceexpand
from pydantic import Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import FomoError, Role, checks_files, expand_path

from .params import DatasetIdentity
from .tar_index import DamagedShard, ShardIndex, ShardIndexCache

if TYPE_CHECKING:
    from fomo_host.api import BuildContext, ImageTextDataset

    from .cache import Job
    from .splits import BuiltSplit

# Decoding and streaming (numpy, Pillow, torch) are imported when a dataset is built, not when the
# plugin registers: the functions below that need them import them.

GLOB_CHARACTERS = set("*?[")


class WebDatasetParams(DatasetIdentity):
    role: Role = Field(default="pretraining", description="pretraining (the replay pool) by default")
    task: Literal["retrieval"] = Field(default="retrieval", description="image-text pairs without classes: retrieval only")
    shards: list[str] = Field(default=[], description="training shards: paths, globs ('pool/*.tar') or braces ('pool/{000..099}.tar')")
    num_samples: int | None = Field(default=None, ge=1, description="read this many samples from the shards, in order; None: all")
    test_shards: list[str] = Field(default=[], description="test shards (for a retrieval evaluation set)")
    test_samples: int | None = Field(default=None, ge=1, description="read this many test samples; None: all")
    image_extensions: list[str] = Field(default=["jpg", "jpeg", "png", "webp"], min_length=1, description="image entry, first found")
    caption_extensions: list[str] = Field(default=["txt", "json"], min_length=1, description="caption entry, first found")
    json_caption_field: str = Field(default="caption", description="the caption field (string or list of strings) of a .json entry")

    @field_validator("shards", "test_shards", mode="before")
    @classmethod
    def _expand_variables(cls, patterns: Any, info: ValidationInfo) -> Any:
        if isinstance(patterns, str):
            patterns = [patterns]
        return [str(expand_path(p, info)) if isinstance(p, str) else p for p in patterns] if isinstance(patterns, list) else patterns

    @model_validator(mode="after")
    def _shards_exist(self, info: ValidationInfo) -> WebDatasetParams:
        for split, field_name in (("train", "shards"), ("test", "test_shards")):
            patterns = getattr(self, field_name)
            if self.needs(split) and not patterns:
                raise ValueError(f"a {self.role} set needs {field_name}: the tar files of its {split} split")
            if patterns and checks_files(info):
                resolve_shards(patterns)
        return self


def resolve_shards(patterns: list[str]) -> list[Path]:
    """Every shard file, in the order given (a glob's matches sorted); a pattern matching nothing is an error."""
    shards: list[Path] = []
    for pattern in patterns:
        for expanded in braceexpand(pattern):
            if GLOB_CHARACTERS & set(expanded):
                matches = sorted(glob.glob(expanded))
                if not matches:
                    raise ValueError(f"no shard matches {expanded!r}")
                shards.extend(Path(match) for match in matches)
            elif Path(expanded).is_file():
                shards.append(Path(expanded))
            else:
                raise ValueError(f"shard {expanded!r} does not exist")
    return list(dict.fromkeys(shards))


def captions_of(read: Any, members: dict[str, Any], params: WebDatasetParams) -> list[str]:
    """The captions of a sample from its first caption entry (``read(extension)`` gives an entry's bytes)."""
    for extension in params.caption_extensions:
        if extension not in members:
            continue
        value: Any = read(extension).decode("utf-8", errors="replace")
        if extension == "json":
            try:
                value = json.loads(value).get(params.json_caption_field)
            except (json.JSONDecodeError, AttributeError):
                return []
        values = value if isinstance(value, list) else [value]
        return [text.strip() for text in values if isinstance(text, str) and text.strip()]
    return []


@dataclass
class ShardListing:
    """The samples taken from the shards, in order: where each image is (shard, offset, length), or why it has none."""

    shards: list[Path]
    indexes: list[ShardIndex] = field(default_factory=list)
    shard_of: list[int] = field(default_factory=list)
    sample_of: list[int] = field(default_factory=list)
    count: int | None = None
    """How many samples were asked of the shards (None: all)."""
    carved: bool = False
    """A part of the listed samples (the validation carve's), not the shards' first ``count`` ones."""

    def __len__(self) -> int:
        return len(self.shard_of)

    def names(self) -> list[str]:
        """Each sample's name for the validation carve: its shard's file name and its key (not where the shards lie)."""
        pairs = zip(self.shard_of, self.sample_of, strict=True)
        return [f"{self.indexes[slot].path.name}:{self.indexes[slot].keys[sample]}" for slot, sample in pairs]

    def take(self, positions: list[int]) -> ShardListing:
        """The samples at ``positions``, in that order."""
        shard_of = [self.shard_of[position] for position in positions]
        sample_of = [self.sample_of[position] for position in positions]
        return ShardListing(self.shards, self.indexes, shard_of, sample_of, self.count, carved=True)


def list_samples(shards: list[Path], count: int | None, label: str, context: BuildContext) -> ShardListing:
    """Index the shards (cached) until ``count`` samples are listed (all without a count)."""
    cache = ShardIndexCache(context.cache_dir)
    listing = ShardListing(shards, count=count)
    pending = [shard for shard in shards if cache.cached(shard) is None]
    with context.progress(f"{label}: indexing shards", len(pending)) if pending else contextlib.nullcontext() as bar:
        for slot, shard in enumerate(shards):
            if count is not None and len(listing) >= count:
                break
            try:
                index = cache.get(shard)
            except DamagedShard as exc:
                raise FomoError(f"{label}: shard {shard} {exc}; re-create it or leave it out of the shards") from None
            if bar is not None and shard in pending:
                bar.advance()
            listing.indexes.append(index)
            take = len(index) if count is None else min(len(index), count - len(listing))
            listing.shard_of.extend([slot] * take)
            listing.sample_of.extend(range(take))
    return listing


def image_extension(members: dict[str, Any], params: WebDatasetParams) -> str | None:
    return next((extension for extension in params.image_extensions if extension in members), None)


def shard_jobs(listing: ShardListing, params: WebDatasetParams) -> Iterator[Job]:
    """One job per listed sample, shard by shard: the image's bytes and the captions, or why the sample is unusable."""
    from .cache import Job

    handles: dict[int, int] = {}
    try:
        for slot, sample in zip(listing.shard_of, listing.sample_of, strict=True):
            index = listing.indexes[slot]
            if slot not in handles:
                handles[slot] = os.open(index.path, os.O_RDONLY)
            members = index.members[sample]

            def read(extension: str, members: dict[str, Any] = members, handle: int = handles[slot]) -> bytes:
                member = members[extension]
                return os.pread(handle, member.size, member.offset)

            name = f"{index.path}:{index.keys[sample]}"
            image = image_extension(members, params)
            captions = captions_of(read, members, params)
            if image is None:
                yield Job(name, None, problem=f"no image entry ({', '.join(params.image_extensions)})")
            elif not captions:
                yield Job(name, None, problem=f"no caption entry ({', '.join(params.caption_extensions)})")
            else:
                yield Job(name, read(image), meta=captions)
    finally:
        for handle in handles.values():
            os.close(handle)


def list_split(params: WebDatasetParams, split: str, context: BuildContext) -> ShardListing:
    """The samples of the train or test split: its shards indexed, its count taken in shard order."""
    patterns, count = (params.shards, params.num_samples) if split == "train" else (params.test_shards, params.test_samples)
    label = f"dataset {params.name!r} ({split})"
    try:
        shards = resolve_shards(patterns)
    except ValueError as exc:
        raise FomoError(f"{label}: {exc}") from None
    listing = list_samples(shards, count, label, context)
    if count is not None and len(listing) < count:
        raise FomoError(f"{label}: the shards hold {len(listing)} samples, fewer than the {count} asked for; lower the count")
    return listing


def build_shard_split(params: WebDatasetParams, split: str, listing: ShardListing, context: BuildContext) -> BuiltSplit:
    import numpy as np
    import torch

    from .cache import ImageCache, MemmapSampleSet, content_key, file_signature
    from .splits import BuiltSplit, check_skipped, decode_device, image_size
    from .streaming import ShardImages, StreamedSampleSet

    label = f"dataset {params.name!r} ({split})"
    shards = listing.shards
    size = image_size(context)
    key = content_key(
        kind="webdataset",
        shards=[file_signature(shard) for shard in shards],
        count=listing.count,
        **({"carved": content_key(shard_of=listing.shard_of, sample_of=listing.sample_of)} if listing.carved else {}),
        images=params.image_extensions,
        captions=params.caption_extensions,
        json_field=params.json_caption_field,
        size=size,
    )
    cache = ImageCache(context.cache_dir)
    stream = params.cache == "stream"
    device = decode_device(label, params, context)
    entry_key = content_key(kind="webdataset-checked", pixels=key) if stream else key
    jobs = shard_jobs(listing, params)
    built = cache.get_or_build(
        entry_key, jobs, size, params.workers, label, total=len(listing), progress=context.progress, pixels=not stream
    )
    check_skipped(label, built.skipped, built.total, params.max_skipped_fraction)
    captions = built.meta or []
    labels = torch.full((len(captions),), -1, dtype=torch.int64)
    if not stream:
        assert built.images is not None
        return BuiltSplit(MemmapSampleSet(built.images, labels, captions, key), built.skipped)
    kept = built.kept
    shard_of = np.asarray(listing.shard_of, dtype=np.int32)[kept]
    sample_of = np.asarray(listing.sample_of, dtype=np.int64)[kept]
    offsets, lengths, keys = [], [], []
    for slot, sample in zip(shard_of.tolist(), sample_of.tolist(), strict=True):
        index = listing.indexes[slot]
        extension = image_extension(index.members[sample], params)
        assert extension is not None
        member = index.members[sample][extension]
        offsets.append(member.offset)
        lengths.append(member.size)
        keys.append(index.keys[sample])
    encoded = ShardImages(shards, shard_of, np.asarray(offsets), np.asarray(lengths), keys)
    pixel_key = key if device is None else content_key(kind="webdataset", pixels=key, decode="gpu")
    samples = StreamedSampleSet(encoded, labels, captions, pixel_key, size, label, params.workers, device)
    return BuiltSplit(samples, built.skipped)


def build_webdataset(params: WebDatasetParams, context: BuildContext) -> list[ImageTextDataset]:
    """Image-text pairs from WebDataset tar shards (local paths or globs), indexed and decoded once (or streamed), with
    ``num_samples`` taken in shard order; the usual pretraining replay pool (e.g. a DataComp or LAION subset)."""
    from .splits import assemble, carve_positions, carve_record, carve_source

    splits_given = (("train", params.shards), ("test", params.test_shards))
    listed = {split: list_split(params, split, context) for split, patterns in splits_given if patterns}
    validation = None
    if params.validation_fraction:
        source = carve_source(listed)
        names = listed[source].names()
        carved = carve_positions([-1] * len(names), names, params.validation_fraction, params.validation_seed)
        taken = set(carved)
        listed["validation"] = listed[source].take(carved)
        listed[source] = listed[source].take([position for position in range(len(names)) if position not in taken])
        validation = carve_record(params, source)
    splits = {split: build_shard_split(params, split, listing, context) for split, listing in listed.items()}
    description = f"WebDataset shards {', '.join(params.shards + params.test_shards)}"
    return [assemble(params, [], [], splits, description, validation)]
