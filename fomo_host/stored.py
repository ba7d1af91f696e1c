"""The JSON files fomo-host writes and later reads back, as pydantic models: a file of the wrong shape is one line naming
the file and the key, never a ``KeyError`` deep in a report.

Each model checks what the readers rely on and lets other keys through (``extra="allow"``), so that a file
written by a newer fomo-host with more keys still reads. Numbers are never booleans here, as in specs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from .errors import FomoError

Number = StrictInt | StrictFloat
"""A JSON number (``NaN`` included: a run without zero-shot sets has no A_ZS); never ``true``."""


class StoredModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class EvaluationRecord(StoredModel):
    """One line of ``results.jsonl``."""

    task: StrictInt = Field(ge=-1)
    step: StrictInt = Field(ge=0)
    samples_seen: StrictInt = Field(ge=0)
    scores: dict[str, Number]
    A_KA: Number
    A_ZS: Number
    GM: Number


class SummaryRun(StoredModel):
    num_tasks: StrictInt = Field(ge=1)


class Summary(StoredModel):
    """``summary.json``, written at a run's end."""

    run: SummaryRun
    num_evaluations: StrictInt | None = Field(default=None, ge=1)
    tasks_done: StrictInt | None = None


class Manifest(StoredModel):
    """``checkpoints/NNNNN.json``: what a checkpoint holds and the checksums of the files it depends on."""

    format: StrictInt
    next_task: StrictInt = Field(ge=0)
    step_in_task: StrictInt = Field(default=0, ge=0)
    global_step: StrictInt = Field(ge=0)
    records: StrictInt = Field(ge=0)
    state: StrictStr
    files: dict[str, dict[str, Any]]


class StepCostRecord(StoredModel):
    """The ``cost`` of a cached measurement, ``FOMO_CACHE_DIR/budget/METHOD-DIGEST.json``."""

    step_gflops: Number = Field(ge=0)
    end_task_gflops: Number = Field(ge=0)
    peak_memory_bytes: StrictInt = Field(ge=0)
    memory_measure: StrictStr


class CachedStepCost(StoredModel):
    cost: StepCostRecord


class IndexRun(StoredModel):
    """One run of ``study.json``."""

    model_config = ConfigDict(extra="ignore")

    key: StrictStr = Field(min_length=1)
    run_dir: StrictStr = Field(min_length=1)
    group: StrictInt = Field(ge=0)
    label: StrictStr
    variant: StrictStr | None
    grid: dict[str, Any]
    seed: StrictInt = Field(ge=0)
    overrides: list[StrictStr]
    fingerprint: StrictStr
    status: Literal["pending", "running", "finished", "failed", "interrupted", "pruned"] = "pending"
    job: StrictStr | None = None
    attempts: StrictInt = Field(default=0, ge=0)
    started: StrictStr | None = None
    ended: StrictStr | None = None
    error: StrictStr | None = None
    trial: StrictInt | None = Field(default=None, ge=0)
    """A search study's Optuna trial number (per variant)."""
    tasks_reached: StrictInt | None = Field(default=None, ge=0)
    reused_from: StrictStr | None = None
    """The run directory a finished run was copied from (``fomo-host sweep --reuse``)."""

    @field_validator("run_dir")
    @classmethod
    def _inside_the_study(cls, value: str) -> str:
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"{value!r} is not a folder inside the study directory")
        return value


class IndexStudy(StoredModel):
    """The study's settings in ``study.json``."""

    name: StrictStr
    file: StrictStr | None = None
    """The study file (absolute); what ``sweep --resume`` reads when no study file is given."""
    base: StrictStr | None = None
    sets: list[StrictStr] = Field(default_factory=list)
    common: list[StrictStr] = Field(default_factory=list)
    launcher: StrictStr | None = None
    seeds: list[StrictInt] = Field(default_factory=list)
    description: StrictStr = ""
    created: StrictStr | None = None


class Index(BaseModel):
    """``study.json``."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1]
    study: IndexStudy
    runs: list[IndexRun]

    @model_validator(mode="after")
    def _unique_keys(self) -> Index:
        keys = [run.key for run in self.runs]
        duplicate = next((key for key in keys if keys.count(key) > 1), None)
        if duplicate is not None:
            raise ValueError(f"run {duplicate!r} is listed twice")
        return self


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], content: Any, path: Path | str, where: str = "") -> Model:
    """``content`` (parsed JSON) as ``model``, or a :class:`FomoError` naming the file and the first wrong key."""
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = "required key is missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        raise FomoError(f"{path} is damaged: {where}{location}: {message}") from None


def read_json(path: Path) -> Any:
    """A JSON file, or one line saying why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FomoError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError):
        raise FomoError(f"{path} is damaged: not JSON") from None
    except RecursionError:
        raise FomoError(f"{path} is damaged: nested too deeply") from None


def read_stored(model: type[Model], path: Path) -> Model:
    return validated(model, read_json(path), path)
