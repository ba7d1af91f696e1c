"""Parameters shared by the dataset components: identity, path expansion, decoding and bad-image limits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fomo_host.api import FomoError, Role, TaskType, UserPath

DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NEEDED_SPLITS: dict[str, tuple[str, ...]] = {
    "pretraining": ("train",),
    "adaptation": ("train", "test"),
    "zero_shot": ("test",),
}
"""The splits a dataset of each role must have (the host checks the same when it selects datasets)."""


DataPath = UserPath
"""A path parameter: ``~`` and environment variables (``${FOMO_DATA}/dtd``) are expanded when the spec is validated
(the host's rule for every path in a spec, :func:`fomo_host.api.expand_path`)."""


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class LoaderParams(BaseModel):
    """How images are decoded (into the cache, or as batches use them), and how many unreadable ones a split may have."""

    model_config = ConfigDict(extra="forbid")

    max_skipped_fraction: float = Field(
        default=0.01, ge=0, le=1, description="unreadable images a split may skip (they are counted); above this the build stops"
    )
    workers: int = Field(default_factory=default_workers, ge=1, description="decoding threads (Pillow releases the GIL while decoding)")
    cache: Literal["decoded", "stream"] = Field(
        default="decoded",
        description="decoded: every image decoded once into a memory-mapped cache (147 KiB per image at 224 px); "
        "stream: images stay encoded and are decoded when a batch uses them (data too large to cache; see data.workers)",
    )
    decode: Literal["cpu", "gpu"] = Field(
        default="cpu",
        description="with cache = 'stream': 'gpu' decodes JPEGs on the training GPU (torchvision); pixels close to the CPU's, not equal",
    )

    @model_validator(mode="after")
    def _gpu_decoding_streams(self) -> LoaderParams:
        if self.decode == "gpu" and self.cache != "stream":
            raise ValueError("decode = 'gpu' applies to streamed images; set cache = 'stream' as well, or leave decode = 'cpu'")
        return self


class ValidationParams(BaseModel):
    """A validation split carved from a dataset's own data, for tuning (``evaluation.split = "validation"``)."""

    model_config = ConfigDict(extra="forbid")

    validation_fraction: float = Field(
        default=0.0,
        ge=0,
        le=0.5,
        description="share of each class's training images held out as the validation split (sets without a training split: of "
        "the test images), disjoint from both; 0: no validation split",
    )
    validation_seed: int = Field(
        default=0, ge=0, description="which images the carve takes; independent of run.seed, so every run of a study tunes on the same ones"
    )


class DatasetIdentity(ValidationParams, LoaderParams):
    """One dataset's identity: its name in the run, what it is for and how it is evaluated."""

    name: str = Field(pattern=DATASET_NAME, description="the dataset's name in the run (stream concepts read 'name::class')")
    role: Role = Field(default="adaptation", description="pretraining (replay pool), adaptation (the stream) or zero_shot (retention)")
    task: TaskType = Field(default="classification", description="classification (zero-shot accuracy) or retrieval (recall@k)")

    @model_validator(mode="after")
    def _evaluated_sets_carve_validation(self) -> DatasetIdentity:
        if self.validation_fraction and self.role == "pretraining":
            raise ValueError("validation_fraction: a pretraining set is never evaluated, so a validation split has no use; leave it 0")
        return self

    def needs(self, split: str) -> bool:
        return split in NEEDED_SPLITS[self.role]


class DatasetParams(DatasetIdentity):
    """A dataset with classes: its identity and the zero-shot templates of its class names."""

    templates: list[str] = Field(
        default=["a photo of a {}."], min_length=1, description="zero-shot class templates, each with '{}' for the class name"
    )

    @field_validator("templates")
    @classmethod
    def _templates_have_a_slot(cls, templates: list[str]) -> list[str]:
        return check_templates(templates)


def check_templates(templates: list[str]) -> list[str]:
    missing = [template for template in templates if "{}" not in template]
    if missing:
        raise ValueError(f"every template needs '{{}}' where the class name goes; {missing[0]!r} has none")
    return templates


@contextmanager
def user_errors(where: str) -> Iterator[None]:
    """Problems with the user's files (raised as ValueError by the checks the validators share) become one clear line."""
    try:
        yield
    except ValueError as exc:
        raise FomoError(f"{where}: {exc}") from None
