"""The orderings' Params (imported at registration: no torch here)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fomo_host.api import checks_files, expand_path


class OrderingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reverse: bool = Field(default=False, description="read the ordering backwards (tasks in reverse order, each reversed)")


def existing_file(value: Path, info: ValidationInfo, what: str) -> Path:
    """``~`` and ``$VAR`` / ``${VAR}`` expanded; the file must exist (not checked under ``validate --schema-only``)."""
    path = Path(expand_path(value, info))  # type: ignore[arg-type]
    if checks_files(info) and not path.is_file():
        raise ValueError(f"{what} {str(value)!r} does not exist")
    return path


class RandomParams(OrderingParams):
    seed: int | None = Field(default=None, description="shuffle seed; default: the run seed")


class DatasetIncrementalParams(OrderingParams):
    datasets: list[str] | None = Field(default=None, description="dataset order; default: the order of data.adaptation")
    one_task_per_dataset: bool = Field(default=False, description="make each dataset exactly one task (ignores data.num_tasks)")


class ExplicitParams(OrderingParams):
    file: Path = Field(description="a JSON list of 'dataset::class' (or the paper's 'DATASET+++class') in stream order")

    @field_validator("file")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        return existing_file(value, info, "stream file")


class FrequencyParams(OrderingParams):
    file: Path = Field(
        description="concept frequencies: a JSON object {concept: count} or a CSV with columns concept,count; a concept is "
        "'dataset::class', 'DATASET+++class' or a bare class name (then it counts for that class in every dataset)"
    )
    default_count: float | None = Field(default=None, ge=0, description="count of concepts the table lacks; None: they are an error")

    @field_validator("file")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        return existing_file(value, info, "frequency table")


class SimilarityParams(OrderingParams):
    start: str | None = Field(
        default=None, description="the first concept ('dataset::class' or 'DATASET+++class'); default: the first in sorted order"
    )
    prompt: Literal["templates", "name"] = Field(
        default="templates", description="embed each class through its dataset's zero-shot templates (averaged), or its bare name"
    )
    batch_size: int = Field(default=256, ge=1)


class PerformanceParams(OrderingParams):
    batch_size: int = Field(default=256, ge=1, description="images (and prompts) per forward pass")
