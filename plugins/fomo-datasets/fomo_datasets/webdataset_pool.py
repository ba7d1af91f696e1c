"""``webdataset``: WebDataset tar shards (image + caption per key), e.g. the pretraining replay pool.

Shards are streamed once with the ``webdataset`` package, in order; each sample's
image is decoded into the memory-mapped cache and its captions are kept with it,
so later runs read neither the tars nor the JPEGs again.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import torch
import webdataset
from braceexpand import braceexpand
from pydantic import Field, ValidationInfo, field_validator, model_validator

from fomo_host.api import BuildContext, FomoError, ImageTextDataset, Role, checks_files, expand_path

from .cache import ImageCache, Job, MemmapSampleSet, content_key, file_signature
from .params import DatasetIdentity
from .splits import BuiltSplit, assemble, check_skipped, image_size

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


def captions_of(sample: dict[str, Any], params: WebDatasetParams) -> list[str]:
    for extension in params.caption_extensions:
        if extension not in sample:
            continue
        value: Any = sample[extension].decode("utf-8", errors="replace")
        if extension == "json":
            try:
                value = json.loads(value).get(params.json_caption_field)
            except (json.JSONDecodeError, AttributeError):
                return []
        values = value if isinstance(value, list) else [value]
        return [text.strip() for text in values if isinstance(text, str) and text.strip()]
    return []


def shard_jobs(shards: list[Path], params: WebDatasetParams) -> Iterator[Job]:
    """One job per tar sample, shard by shard; a damaged shard stops the build with its name."""
    for shard in shards:
        pipeline = webdataset.DataPipeline(webdataset.SimpleShardList([str(shard)]), webdataset.tarfile_to_samples())
        try:
            for sample in pipeline:
                name = f"{shard}:{sample['__key__']}"
                image = next((sample[e] for e in params.image_extensions if e in sample), None)
                captions = captions_of(sample, params)
                if image is None:
                    yield Job(name, None, problem=f"no image entry ({', '.join(params.image_extensions)})")
                elif not captions:
                    yield Job(name, None, problem=f"no caption entry ({', '.join(params.caption_extensions)})")
                else:
                    yield Job(name, image, meta=captions)
        except Exception as exc:  # tarfile and webdataset raise several kinds for a damaged shard
            raise FomoError(
                f"dataset {params.name!r}: shard {shard} is not a readable tar file ({exc.args[0]}); "
                "re-create it or leave it out of the shards"
            ) from None


def build_shard_split(params: WebDatasetParams, split: str, context: BuildContext) -> BuiltSplit:
    patterns, count = (params.shards, params.num_samples) if split == "train" else (params.test_shards, params.test_samples)
    label = f"dataset {params.name!r} ({split})"
    try:
        shards = resolve_shards(patterns)
    except ValueError as exc:
        raise FomoError(f"{label}: {exc}") from None
    size = image_size(context)
    key = content_key(
        kind="webdataset",
        shards=[file_signature(shard) for shard in shards],
        count=count,
        images=params.image_extensions,
        captions=params.caption_extensions,
        json_field=params.json_caption_field,
        size=size,
    )
    jobs = islice(shard_jobs(shards, params), count)
    decoded = ImageCache(context.cache_dir).get_or_build(key, jobs, size, params.workers, label)
    if count is not None and decoded.total < count:
        raise FomoError(f"{label}: the shards hold {decoded.total} samples, fewer than the {count} asked for; lower the count")
    check_skipped(label, decoded.skipped, decoded.total, params.max_skipped_fraction)
    captions = decoded.meta or []
    labels = torch.full((len(captions),), -1, dtype=torch.int64)
    return BuiltSplit(MemmapSampleSet(decoded.images, labels, captions, key), decoded.skipped)


def build_webdataset(params: WebDatasetParams, context: BuildContext) -> list[ImageTextDataset]:
    """Image-text pairs from WebDataset tar shards (local paths or globs), streamed and decoded once, with
    ``num_samples`` taken in shard order; the usual pretraining replay pool (e.g. a DataComp or LAION subset)."""
    splits = {}
    for split, patterns in (("train", params.shards), ("test", params.test_shards)):
        if patterns:
            splits[split] = build_shard_split(params, split, context)
    description = f"WebDataset shards {', '.join(params.shards + params.test_shards)}"
    return [assemble(params, [], [], splits, description)]
