"""The study file: a base spec crossed with a grid of spec values, named variants and seeds (TOML, strict pydantic).

::

    base = "../quickstart.toml"              # a spec file, relative to this file
    seeds = [0, 1, 2]
    set = { "budget.samples_per_task" = 3840 }   # applied to every point
    [grid]                                   # cartesian product of spec values
    "method.name" = ["finetune", "lora"]
    "optimizer.lr" = [1e-3, 3e-4]
    [[variants]]                             # named override sets, crossed with the grid
    label = "ft-merge"
    set = { "merger.name" = "finetuned" }
    [launcher]
    name = "local"
    params = { max_parallel = 2 }

Keys of ``set`` and ``[grid]`` are spec key paths, quoted (``"merger.name"``), and
mean what they mean to ``fomo-host run --set``: the value replaces what is at
that path (a table value replaces the whole table).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import SpecError
from ..spec import RunSpec, StrictModel, format_validation_error, parse_override, read_toml, refuse_booleans_for_numbers
from .finding import Finding
from .space import SearchTable

SPEC_SECTIONS = frozenset(RunSpec.model_fields)
"""The first part of every spec key path a study may set."""
STUDY_KEYS = ("name", "seeds", "launcher", "search")
"""What ``fomo-host sweep --set`` may change in the study itself (any other key is a spec key, set on every point)."""
RESERVED_PATHS = {
    ("run", "seed"): "use the study's seeds = [...]",
    ("run", "output_dir"): "the study directory decides where runs go",
}
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+=,:()-]*$")


class LauncherRef(StrictModel):
    """The launcher component that starts the runs, with its settings."""

    name: str = Field(default="local", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class Variant(StrictModel):
    """A named set of overrides; each variant is crossed with the whole grid."""

    label: str = Field(min_length=1, max_length=80)
    description: str = ""
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _readable_label(cls, value: str) -> str:
        if not LABEL_PATTERN.match(value):
            raise ValueError("use letters, digits, spaces and . _ + = , : ( ) -, starting with a letter or digit")
        return value

    @field_validator("set")
    @classmethod
    def _set_keys(cls, keys: dict[str, Any]) -> dict[str, Any]:
        for key in keys:
            check_key_path(key)
        return keys


class StudyFile(StrictModel):
    """A whole study."""

    base: Path
    """The spec every point starts from, relative to the study file."""
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    """Names the default study directory (runs/NAME-TIMESTAMP); default: the study file's name."""
    description: str = ""
    seeds: list[int] | None = Field(default=None, min_length=1)
    """Each point runs once per seed (``run.seed``); default: the base spec's seed."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Overrides for every point."""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """Spec key path -> the values it takes; points are the cartesian product."""
    variants: list[Variant] = Field(default_factory=list)
    launcher: LauncherRef = Field(default_factory=LauncherRef)
    search: SearchTable | None = None
    """An Optuna search instead of a grid (see :mod:`fomo_host.study.space`)."""
    finding: Finding | None = None
    """The claim the study tests, as comparisons of its points (``fomo-host findings`` judges them)."""

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is None:
            return None
        if any(seed < 0 for seed in seeds):
            raise ValueError("seeds must be at least 0")
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"seeds are listed twice: {seeds}")
        return seeds

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"{key!r} has no values")
            if any(values.count(value) > 1 for value in values):
                raise ValueError(f"{key!r} lists a value twice: {values}")
        return grid

    @field_validator("set")
    @classmethod
    def _set_keys(cls, keys: dict[str, Any]) -> dict[str, Any]:
        for key in keys:
            check_key_path(key)
        return keys

    @field_validator("grid")
    @classmethod
    def _grid_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key in grid:
            check_key_path(key)
        return grid

    @model_validator(mode="after")
    def _no_clashes(self) -> StudyFile:
        if self.search is not None and self.grid:
            raise ValueError("grid: a search study has no [grid]; search those keys in [search.space] (choice = [...])")
        # two keys naming one spec value (a table and a key inside it, or one path spelt twice) would give points
        # labelled as different settings that run the same spec
        for where, keys in [("grid", list(self.grid)), *((f"variants.{i}.set", list(v.set)) for i, v in enumerate(self.variants))]:
            for position, key in enumerate(keys):
                clash = next((other for other in keys[:position] if overlaps(key, other)), None)
                if clash is not None:
                    raise ValueError(f"{where}: {key!r} and {clash!r} name the same spec value; keep one of them")
        labels = [variant.label for variant in self.variants]
        duplicate = next((label for label in labels if labels.count(label) > 1), None)
        if duplicate is not None:
            raise ValueError(f"variant label {duplicate!r} is used twice")
        for index, variant in enumerate(self.variants):
            for key in variant.set:
                clash = next((grid_key for grid_key in self.grid if overlaps(key, grid_key)), None)
                if clash is not None:
                    raise ValueError(f"variants.{index}.set: {key!r} overlaps the grid's {clash!r}; vary a key in one of them only")
        for key in self.set:
            clash = next((other for other in [*self.grid, *(k for v in self.variants for k in v.set)] if covers(other, key)), None)
            if clash is not None:
                raise ValueError(f"set: {key!r} is replaced on every point by the grid's or a variant's {clash!r}")
        return self


def key_parts(key: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in key.split("."))


def overlaps(first: str, second: str) -> bool:
    """Whether one key path is the other or lies inside it (``method`` and ``method.name``)."""
    a, b = key_parts(first), key_parts(second)
    return a[: len(b)] == b or b[: len(a)] == a


def covers(later: str, earlier: str) -> bool:
    """Whether setting ``later`` replaces what setting ``earlier`` did (it is the same path or a table above it)."""
    a, b = key_parts(later), key_parts(earlier)
    return b[: len(a)] == a


def check_key_path(key: str) -> None:
    parts = key_parts(key)
    if not all(parts):
        raise ValueError(f"{key!r} has an empty part")
    if parts[0] not in SPEC_SECTIONS:
        raise ValueError(f"{key!r} is not a spec key path (those start with {', '.join(sorted(SPEC_SECTIONS))})")
    for reserved, why in RESERVED_PATHS.items():
        if parts[: len(reserved)] == reserved or reserved[: len(parts)] == parts:
            raise ValueError(f"{key!r} cannot be set in a study: {why}")


def load_study_file(path: Path, sets: Sequence[str] = (), launcher: str | None = None) -> StudyFile:
    """Read and validate a study file; ``sets`` are the study keys of ``fomo-host sweep --set`` (seeds, launcher, name).

    ``launcher`` (``--launcher``) replaces the file's launcher; the file's launcher params belong to
    the file's launcher and are dropped when the name changes (``--set launcher.params.KEY=...`` sets new ones).
    """
    if not path.is_file():
        raise SpecError(f"{path}: no such study file")
    raw = read_toml(path)
    written = raw.get("launcher", {})
    # a launcher that is not a table is left for the validation to refuse, with or without --launcher
    if launcher is not None and isinstance(written, dict) and written.get("name", LauncherRef().name) != launcher:
        raw["launcher"] = {"name": launcher}
    for text in sets:
        keys, value = parse_override(text)
        if keys[0] not in STUDY_KEYS:
            raise SpecError(f"--set {text!r}: not a study key ({', '.join(STUDY_KEYS)}); spec keys go to every point")
        node = raw
        for part in keys[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {text!r}: {part} is a value, not a table")
        node[keys[-1]] = value
    refuse_booleans_for_numbers(StudyFile, raw, str(path))
    try:
        study = StudyFile.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{path}: {format_study_error(exc)}") from None
    return study


def format_study_error(exc: ValidationError) -> str:
    """pydantic's errors as ``key.path: message``, without its ``Value error,`` prefix and its ``(top level)`` location."""
    return format_validation_error(exc).replace("(top level): ", "").replace("Value error, ", "")


def is_study_key(text: str) -> bool:
    """Whether a ``--set KEY=VALUE`` of ``fomo-host sweep`` changes the study (else it is a spec override for every point)."""
    key = text.split("=", 1)[0].strip()
    return key_parts(key)[0] in STUDY_KEYS
