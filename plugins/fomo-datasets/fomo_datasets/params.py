"""Parameters shared by the dataset components: identity, path expansion, decoding and bad-image limits."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from fomo_host.api import FomoError, Role, TaskType, checks_files

UNSET_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NEEDED_SPLITS: dict[str, tuple[str, ...]] = {
    "pretraining": ("train",),
    "adaptation": ("train", "test"),
    "zero_shot": ("test",),
}
"""The splits a dataset of each role must have (the host checks the same when it selects datasets)."""


def expand_path(value: object, info: ValidationInfo) -> object:
    """``~`` and ``$VAR`` / ``${VAR}`` expanded from the environment; an unset variable is an error (except schema-only)."""
    if not isinstance(value, str | Path):
        return value
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = UNSET_VARIABLE.search(expanded)
    if unset and checks_files(info):
        raise ValueError(f"environment variable {unset.group(1)} in {str(value)!r} is not set; export it or give the path with --set")
    return Path(expanded)


DataPath = Annotated[Path, BeforeValidator(expand_path)]
"""A path parameter: ``~`` and environment variables (``${FOMO_DATA}/dtd``) are expanded when the spec is validated."""


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class LoaderParams(BaseModel):
    """How images are decoded into the cache, and how many unreadable ones a split may have."""

    model_config = ConfigDict(extra="forbid")

    max_skipped_fraction: float = Field(
        default=0.01, ge=0, le=1, description="unreadable images a split may skip (they are counted); above this the build stops"
    )
    workers: int = Field(default_factory=default_workers, ge=1, description="decoding threads (Pillow releases the GIL while decoding)")


class DatasetIdentity(LoaderParams):
    """One dataset's identity: its name in the run, what it is for and how it is evaluated."""

    name: str = Field(pattern=DATASET_NAME, description="the dataset's name in the run (stream concepts read 'name::class')")
    role: Role = Field(default="adaptation", description="pretraining (replay pool), adaptation (the stream) or zero_shot (retention)")
    task: TaskType = Field(default="classification", description="classification (zero-shot accuracy) or retrieval (recall@k)")

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
