"""A study's points: variants x grid x seeds, each a list of overrides of the base spec, each validated before anything runs."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from ..plugins import PluginHost
from ..spec import RunSpec, format_validation_error, read_toml, refuse_booleans_for_numbers
from ..spec_loading import build_spec
from .file import StudyFile, check_key_path, covers, is_study_key

if TYPE_CHECKING:
    from ..components import Launcher

BASE_LABEL = "base"
"""The label of the one group of a study with neither grid nor variants."""


@dataclass(frozen=True)
class StudyPoint:
    """One run of the study: a group (variant and grid values) and a seed."""

    group: int
    """The group's position in the study (variants first, then the grid in the order written)."""
    label: str
    """Human label of the group: the variant's label and the grid values; the same for every seed."""
    variant: str | None
    grid: dict[str, Any]
    seed: int
    overrides: tuple[str, ...]
    """Every override that makes the base spec this run's spec, in the order applied (the seed last)."""
    fingerprint: str = ""
    """The resolved spec's fingerprint (what determines the results), to notice a changed base spec on resume."""
    group_overrides: tuple[str, ...] = field(default=())
    """The overrides that tell this group from the others (variant and grid), for tables."""

    @property
    def group_dir(self) -> str:
        return f"{self.group:02d}-{slug(self.label)}"

    @property
    def key(self) -> str:
        return f"{self.group_dir}/seed-{self.seed}"

    @property
    def identity(self) -> tuple[str | None, tuple[tuple[str, str], ...], int]:
        return point_identity(self.variant, self.grid, self.seed)


def point_identity(variant: str | None, grid: dict[str, Any], seed: int) -> tuple[str | None, tuple[tuple[str, str], ...], int]:
    """What makes a point the same point when a study is resumed: its variant, grid values and seed."""
    return (variant, tuple(sorted((key, toml_inline(value)) for key, value in grid.items())), seed)


@dataclass
class StudyPlan:
    """A study read, expanded and validated."""

    study: StudyFile
    study_file: Path
    base: Path
    spec_sets: list[str]
    common: list[str]
    """The overrides every point gets (the study's ``set``, then ``--set``)."""
    points: list[StudyPoint]
    launcher_params: BaseModel | None = None
    """The launcher's params, validated against its component (None when planned without plugins)."""

    @property
    def name(self) -> str:
        return self.study.name or self.study_file.stem

    @property
    def groups(self) -> int:
        return len({point.group for point in self.points})


def slug(label: str, limit: int = 48) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", label.replace("=", "-")).strip("_")[:limit] or "point"


# ----------------------------------------------------------------------------- TOML values on one line


BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_inline(value: Any) -> str:
    """A value as TOML on one line, as ``--set KEY=VALUE`` reads it (tables inline)."""
    import tomli_w

    if isinstance(value, dict):
        items = [f"{key if BARE_KEY.match(key) else toml_inline(key)} = {toml_inline(item)}" for key, item in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    return tomli_w.dumps({"value": value}).split("=", 1)[1].strip()


def override(key: str, value: Any) -> str:
    return f"{key}={toml_inline(value)}"


def display_value(value: Any, exact: bool = False) -> str:
    """A value for a label: short (``0.001``), or ``exact`` (every digit, strings quoted) where short ones clash."""
    if isinstance(value, str):
        return toml_inline(value) if exact else value
    if isinstance(value, float):
        return repr(value) if exact else format(value, "g")
    return toml_inline(value)


def grid_label(grid: dict[str, Any], exact: bool = False) -> list[str]:
    """``method.name = lora`` reads as ``lora``; other keys as ``lr=0.001`` (the full path where last parts clash).

    ``exact``: every key by its full path and every value with all its digits, for points whose short labels clash.
    """
    last = [key.split(".")[-1] for key in grid]
    parts = []
    for key, value in grid.items():
        if key.endswith(".name") and isinstance(value, str) and not exact:
            parts.append(value)
        else:
            short = key.split(".")[-1]
            parts.append(f"{short if last.count(short) == 1 and not exact else key}={display_value(value, exact)}")
    return parts


def group_labels(groups: list[tuple[Any, dict[str, Any]]]) -> list[str]:
    """A label per group (variant, grid values), unique by construction, so that every table can tell the points apart:
    the short label; where two groups share it, the exact one; where even those clash, the group's number after it."""

    def label(variant: Any, grid: dict[str, Any], exact: bool) -> str:
        parts = ([variant.label] if variant else []) + grid_label(grid, exact)
        return ", ".join(parts) if parts else BASE_LABEL

    labels = [label(variant, grid, exact=False) for variant, grid in groups]
    labels = [
        label(variant, grid, exact=True) if labels.count(labels[position]) > 1 else labels[position]
        for position, (variant, grid) in enumerate(groups)
    ]
    return [f"{text} (#{position})" if labels.count(text) > 1 else text for position, text in enumerate(labels)]


# ----------------------------------------------------------------------------- expansion


def split_sets(sets: list[str]) -> tuple[list[str], list[str]]:
    """``fomo-host sweep --set`` values: (study keys, spec keys for every point)."""
    return [text for text in sets if is_study_key(text)], [text for text in sets if not is_study_key(text)]


def common_overrides(study: StudyFile, spec_sets: list[str]) -> list[str]:
    return [override(key, value) for key, value in study.set.items()] + list(spec_sets)


def expand(study: StudyFile, spec_sets: list[str], base_seed: int) -> list[StudyPoint]:
    """Every point: variants (or none) x the grid's cartesian product x seeds; groups numbered in that order."""
    common = common_overrides(study, spec_sets)
    variants: list[Any] = study.variants or [None]
    combinations = [dict(zip(study.grid, values, strict=True)) for values in itertools.product(*study.grid.values())]
    seeds = study.seeds if study.seeds is not None else [base_seed]
    points = []
    groups = list(itertools.product(variants, combinations))
    for group, ((variant, grid), label) in enumerate(zip(groups, group_labels(groups), strict=True)):
        own = ([override(key, value) for key, value in variant.set.items()] if variant else []) + [
            override(key, value) for key, value in grid.items()
        ]
        for seed in seeds:
            points.append(
                StudyPoint(
                    group=group,
                    label=label,
                    variant=variant.label if variant else None,
                    grid=grid,
                    seed=seed,
                    overrides=(*common, *own, override("run.seed", seed)),
                    group_overrides=tuple(own),
                )
            )
    return points


def check_spec_sets(study: StudyFile, spec_sets: list[str]) -> None:
    """One rule for every spec value a study sets: a ``--set`` may set what the study file's ``set`` may (not the seed,
    not where runs go), and one the grid or a variant would overwrite on every point is an error, not silently ignored."""
    varied = [*study.grid, *(key for variant in study.variants for key in variant.set)]
    for text in spec_sets:
        key = text.split("=", 1)[0].strip()
        try:
            check_key_path(key)
        except ValueError as exc:
            raise SpecError(f"--set {exc}") from None
        clash = next((other for other in varied if covers(other, key)), None)
        if clash is not None:
            raise SpecError(f"--set {key}: the study varies {clash!r} on every point (grid or variants); change the study file instead")


def plan_study(study: StudyFile, study_file: Path, spec_sets: list[str], host: PluginHost | None) -> StudyPlan:
    """Expand the study and validate every point's spec (and, with a host, every component's params and the loggers)."""
    base = (study_file.parent / study.base).resolve()
    if not base.is_file():
        raise SpecError(f"{study_file}: base: no such spec file {base}")
    launcher_params = validate_launcher(study, host, study_file) if host is not None else None
    check_spec_sets(study, spec_sets)
    raw = read_toml(base)
    common = common_overrides(study, spec_sets)
    base_seed = build_spec(raw, common, source=f"{study_file}: base {base.name}").run.seed
    points = []
    by_fingerprint: dict[str, StudyPoint] = {}
    for point in expand(study, spec_sets, base_seed):
        spec = validate_point(raw, point, host, f"{study_file}: point {point.label!r} seed {point.seed}")
        point = _with_fingerprint(point, spec)
        # a point is its resolved spec: two that resolve to one spec would be one experiment counted as two
        same = by_fingerprint.setdefault(point.fingerprint, point)
        if same is not point:
            raise SpecError(
                f"{study_file}: points {same.label!r} and {point.label!r} resolve to the same spec (seed {point.seed}); "
                "remove one, or make them differ"
            )
        points.append(point)
    check_finding(study, [point.label for point in points], study_file)
    return StudyPlan(study, study_file.resolve(), base, list(spec_sets), common, points, launcher_params)


def check_finding(study: StudyFile, labels: list[str], study_file: Path) -> None:
    """Every point a claim of the study's [finding] names is a point of the study (a typo found before the runs, not after)."""
    if study.finding is None:
        return
    known = list(dict.fromkeys(labels))
    for position, claim in enumerate(study.finding.claims):
        for role, label in (("point", claim.point), ("against", study.finding.reference(claim))):
            if label not in known:
                points = ", ".join(repr(text) for text in known)
                raise SpecError(f"{study_file}: finding.claims.{position}.{role}: {label!r} is not a point of the study (points: {points})")


def validate_launcher(study: StudyFile, host: PluginHost, study_file: Path) -> BaseModel:
    component = host.registry.get("launcher", study.launcher.name, where=f"{study_file}: launcher.name")
    refuse_booleans_for_numbers(component.params, study.launcher.params, str(study_file), prefix="launcher.params")
    try:
        return component.validate_params(study.launcher.params)
    except ValidationError as exc:
        raise SpecError(f"{study_file}: {format_validation_error(exc, prefix='launcher.params')}") from None


def build_launcher(plan: StudyPlan, host: PluginHost) -> Launcher:
    """The study's launcher, from its validated params."""
    return host.registry.get("launcher", plan.study.launcher.name).factory(plan.launcher_params)


def validate_point(raw: dict[str, Any], point: StudyPoint, host: PluginHost | None, source: str) -> RunSpec:
    spec = build_spec(raw, list(point.overrides), host.registry if host else None, source=source)
    if host is not None:
        from ..engine.preflight import check_loggers

        try:
            check_loggers(host, spec)
        except SpecError as exc:
            raise SpecError(f"{source}: {exc}") from None
    return spec


def _with_fingerprint(point: StudyPoint, spec: RunSpec) -> StudyPoint:
    from dataclasses import replace

    return replace(point, fingerprint=spec.fingerprint())
