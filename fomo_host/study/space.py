"""The ``[search]`` table of a study file: what Optuna searches, for what, and how it stops bad trials early.

::

    [search]
    sampler = "tpe"                                    # tpe, random, nsga2, gp, qmc, grid
    objectives = ["A_KA.final:max", "A_ZS.final:max"]  # dotted paths into summary.json, each :max or :min
    trials = 40                                        # per variant
    pruner = { name = "median", params = { warmup_tasks = 3 } }
    split = "validation"                               # what the objectives are computed on
    [search.space]                                     # every variant's space
    "optimizer.lr" = { log_uniform = [1e-5, 1e-2] }
    [search.spaces.lora]                               # added to the space of variant "lora" only
    "method.params.rank" = { choice = [4, 8, 16, 32] }

Each key of a space is a spec key path; its bounds (or choices) are checked against the
spec and the component's Params before any trial starts, so a bound the Params refuse is
refused here, in one line that names the key path.
"""

from __future__ import annotations

import builtins
import math
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..spec import StrictModel

SAMPLERS = ("tpe", "random", "nsga2", "gp", "qmc", "grid")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive-halving")
SPLITS = ("validation", "test")
DIRECTIONS = {"max": "maximize", "min": "minimize"}


class Dimension(StrictModel):
    """One searched key: exactly one of log_uniform, uniform, int or choice."""

    log_uniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int: tuple[builtins.int, builtins.int] | None = None
    choice: list[Any] | None = Field(default=None, min_length=1)
    log: bool = False
    """With uniform or int: sample on a log scale."""
    step: float | None = Field(default=None, gt=0)
    """With uniform or int: only multiples of step above the low bound."""

    @model_validator(mode="after")
    def _one_kind(self) -> Dimension:
        kinds = [name for name in ("log_uniform", "uniform", "int", "choice") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of log_uniform = [low, high], uniform = [low, high], int = [low, high], choice = [...]")
        kind = kinds[0]
        if kind in ("log_uniform", "choice") and (self.log or self.step is not None):
            raise ValueError(f"log and step go with uniform or int, not with {kind}")
        if self.log and self.step is not None:
            raise ValueError("give log or step, not both (Optuna samples a stepped range uniformly)")
        if kind == "choice":
            assert self.choice is not None
            if any(self.choice.count(value) > 1 for value in self.choice):
                raise ValueError(f"choice lists a value twice: {self.choice}")
            return self
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("bounds must be finite numbers")
        if not low < high:
            raise ValueError(f"the low bound {low:g} must be below the high bound {high:g}")
        if (kind == "log_uniform" or self.log) and low <= 0:
            raise ValueError(f"a log scale needs a low bound above 0, got {low:g}")
        if kind == "int" and self.step is not None and self.step != round(self.step):
            raise ValueError(f"an int range takes a whole step, got {self.step:g}")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in ("log_uniform", "uniform", "int", "choice") if getattr(self, name) is not None)

    @property
    def bounds(self) -> tuple[float, float]:
        values = self.log_uniform or self.uniform or self.int
        assert values is not None
        return float(values[0]), float(values[1])

    def extremes(self) -> list[Any]:
        """The values that must all be valid settings for the range to be: its bounds, or every choice."""
        if self.choice is not None:
            return list(self.choice)
        if self.int is not None:
            return [int(self.int[0]), int(self.int[1])]
        return list(self.bounds)

    def suggest(self, trial: Any, name: str) -> Any:
        """Draw this key's value for an Optuna trial."""
        if self.choice is not None:
            return trial.suggest_categorical(name, self.choice)
        if self.int is not None:
            return trial.suggest_int(name, self.int[0], self.int[1], step=int(self.step or 1), log=self.log)
        low, high = self.bounds
        return trial.suggest_float(name, low, high, log=self.log or self.log_uniform is not None, step=self.step)

    def grid_values(self) -> list[Any]:
        """The values the grid sampler walks: every choice, every int or step of a range."""
        if self.choice is not None:
            return list(self.choice)
        if self.int is not None:
            return list(range(self.int[0], self.int[1] + 1, int(self.step or 1)))
        if self.step is not None:
            low, high = self.bounds
            count = int(math.floor((high - low) / self.step + 1e-9)) + 1
            return [low + index * self.step for index in range(count)]
        raise ValueError("the grid sampler needs choice, int or a uniform range with a step")


class PrunerRef(StrictModel):
    name: str = "none"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in PRUNERS:
            raise ValueError(f"unknown pruner {name!r}; available: {', '.join(PRUNERS)}")
        return name


class Objective(BaseModel):
    """A dotted path into summary.json and whether to maximise it."""

    path: str
    direction: Literal["maximize", "minimize"]

    @property
    def text(self) -> str:
        return f"{self.path}:{'max' if self.direction == 'maximize' else 'min'}"


class SearchTable(StrictModel):
    """The ``[search]`` table."""

    sampler: str = "tpe"
    sampler_params: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the Optuna sampler (e.g. n_startup_trials = 4 for tpe)."""
    objectives: list[str] = Field(min_length=1)
    trials: int = Field(ge=1)
    """Trials per variant."""
    pruner: PrunerRef = Field(default_factory=PrunerRef)
    split: Literal["validation", "test"] = "validation"
    seed: int = Field(default=0, ge=0)
    """Seeds the sampler, so the same study file proposes the same trials."""
    space: dict[str, Dimension] = Field(default_factory=dict)
    spaces: dict[str, dict[str, Dimension]] = Field(default_factory=dict)
    """Variant label -> keys searched for that variant only (its method's own knob)."""

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, name: str) -> str:
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; available: {', '.join(SAMPLERS)}")
        return name

    @field_validator("objectives")
    @classmethod
    def _objective_texts(cls, objectives: list[str]) -> list[str]:
        for text in objectives:
            parse_objective(text)
        if len(set(objectives)) < len(objectives):
            raise ValueError(f"an objective is listed twice: {objectives}")
        return objectives

    @model_validator(mode="after")
    def _pruner_fits(self) -> SearchTable:
        if len(self.objectives) > 1 and self.pruner.name != "none":
            raise ValueError(
                f"pruner {self.pruner.name!r}: Optuna cannot prune a study with several objectives; "
                "set pruner = { name = 'none' } or keep one objective"
            )
        return self

    @property
    def parsed_objectives(self) -> list[Objective]:
        return [parse_objective(text) for text in self.objectives]

    def space_for(self, variant: str | None) -> dict[str, Dimension]:
        return {**self.space, **(self.spaces.get(variant, {}) if variant is not None else {})}


def parse_objective(text: str) -> Objective:
    path, _, direction = text.rpartition(":")
    if not path or direction not in DIRECTIONS:
        raise ValueError(f"objective {text!r}: write PATH:max or PATH:min (e.g. 'A_KA.final:max')")
    if not all(part.strip() for part in path.split(".")):
        raise ValueError(f"objective {text!r}: {path!r} has an empty part")
    return Objective(path=path, direction=DIRECTIONS[direction])  # type: ignore[arg-type]
