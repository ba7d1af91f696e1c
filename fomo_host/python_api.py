"""Driving fomo-host from Python (a notebook, a script): run a spec, read runs back.

::

    import fomo_host

    run = fomo_host.run("specs/quickstart.toml", overrides={"method.name": "lora"}, output="runs/lora")
    run.summary["GM"]["final"], run.records[-1]["scores"]
    run.to_pandas()                         # one row per evaluation (pandas)
    run.export("lora.safetensors")          # the last task's deployed weights as an open_clip model
    fomo_host.load_run("runs/lora")         # the same, read back later
    fomo_host.update("runs/lora", data="new.toml", tasks=2)   # continue it with new data (see docs/keeping-current.md)

The functions raise :class:`fomo_host.errors.FomoError` (one line: what, where,
how to fix) where the command line prints ``error: ...``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import FomoError
from .plugins import PluginHost
from .reporting.runs import RunResult as Run
from .results import RESULTS_FILE
from .spec import RunSpec
from .spec_loading import build_spec, load_spec

SpecSource = str | Path | Mapping[str, Any] | RunSpec
"""A spec: a TOML file's path, its tables as a dict, or a validated :class:`RunSpec`."""
Overrides = Mapping[str, Any] | Sequence[str] | None
"""Spec overrides: ``{"optimizer.lr": 1e-4}``, or ``--set`` strings ``["optimizer.lr=1e-4"]``."""

_warned = False


def plugin_host() -> PluginHost:
    """The installed plugins, loaded once per process (broken ones warned about once)."""
    global _warned
    from .plugins import installed_plugins, warn_about_errors

    host = installed_plugins()
    if not _warned:
        warn_about_errors(host)
        _warned = True
    return host


def override_strings(overrides: Overrides) -> list[str]:
    """``--set`` strings from a mapping (values written as TOML) or a sequence of strings."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={toml_value(value, key)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise FomoError("overrides: give a mapping {'optimizer.lr': 1e-4} or a list of 'key=value' strings, not one string")
    return list(overrides)


def toml_value(value: Any, key: str) -> str:
    """A Python value as an inline TOML value (what ``--set`` reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(name))} = {toml_value(inner, key)}" for name, inner in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(inner, key) for inner in value) + "]"
    raise FomoError(f"overrides: {key}: {value!r} has no TOML form (give a number, string, bool, list or dict)")


def validated_spec(spec: SpecSource, overrides: Overrides = None, host: PluginHost | None = None) -> RunSpec:
    """The validated spec (every component's params too) with ``overrides`` applied."""
    registry = (host or plugin_host()).registry
    sets = override_strings(overrides)
    if isinstance(spec, RunSpec):
        return build_spec(spec.model_dump(mode="json"), sets, registry)
    if isinstance(spec, Mapping):
        return build_spec(dict(spec), sets, registry)
    return load_spec(Path(spec), sets, registry)


def run(
    spec: SpecSource,
    overrides: Overrides = None,
    output: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> Run:
    """Run (or with ``resume=True`` continue, in ``output``) a whole stream, as ``fomo-host run`` does; returns the run.

    :param spec: a spec file, its tables as a dict, or a :class:`RunSpec`.
    :param overrides: spec values to change, ``{"optimizer.lr": 1e-4}`` or ``["optimizer.lr=1e-4"]``.
    :param output: the run directory; default: a new ``run.output_dir/run.name-TIMESTAMP``.
    :param quiet: no progress display.
    """
    from .progress import Reporter
    from .run_directory import choose_run_dir
    from .running import run_in_process

    host = plugin_host()
    resolved = validated_spec(spec, overrides, host)
    run_dir = choose_run_dir(resolved, Path(output) if output is not None else None, resume)
    run_in_process(host, resolved, run_dir, resume, Reporter(enabled=not quiet))
    return load_run(run_dir)


def update(
    run_dir: str | Path,
    data: str | Path | None = None,
    tasks: int | None = None,
    overrides: Overrides = None,
    quiet: bool = False,
) -> Run:
    """Continue a finished run with new data and/or more tasks of its stream, as ``fomo-host update`` does; returns the run.

    Called with only ``run_dir``, continues an update that was interrupted.

    :param data: a data file: ``[[data.sources]]`` and dataset lists under ``[data]``, optionally ``[release]``.
    :param tasks: with new adaptation data, the number of tasks its concepts are cut into (default 1); without, how
        many more tasks of the run's stream to train.
    :param overrides: spec values to change for this update, as for :func:`run`.
    """
    from .progress import Reporter
    from .running import update_in_process

    host = plugin_host()
    update_in_process(
        host,
        Path(run_dir),
        Path(data) if data is not None else None,
        tasks,
        override_strings(overrides),
        Reporter(enabled=not quiet),
    )
    return load_run(run_dir)


def load_run(run_dir: str | Path, label: str | None = None) -> Run:
    """A run directory (finished or still running): ``records`` (the lines of results.jsonl), ``summary``, ``spec``,
    ``settings``, ``paths``, ``to_pandas()``, ``export()``."""
    from .reporting.runs import load_run as read

    return read(Path(run_dir), label)


@dataclass
class Study:
    """A study directory read back: its index (every run, its point, seed and status) and the runs that have results."""

    study_dir: Path
    index: Any
    """The study's index (:func:`fomo_host.study.read_index`): settings, and every run with its status."""
    runs: list[Run]
    """The runs that have evaluations (finished, running or interrupted), labelled by their point (and seed)."""

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every evaluation of every run (the lines of their results.jsonl), each with the run's ``key``, ``label``,
        ``group``, ``seed`` and ``status`` in the study."""
        return [{**record, **entry} for run, entry in zip(self.runs, self._entries(), strict=True) for record in run.records]

    def _entries(self) -> list[dict[str, Any]]:
        by_dir = {self.index.run_path(entry).resolve(): entry for entry in self.index.runs}
        entries = []
        for run in self.runs:
            entry = by_dir[run.run_dir.resolve()]
            entries.append({"key": entry.key, "label": entry.label, "group": entry.group, "seed": entry.seed, "status": entry.status})
        return entries

    def to_pandas(self) -> Any:
        """One row per evaluation of every run (as :meth:`Run.to_pandas`), with the study's columns: ``key``, ``label``
        (shared by the seeds of a point), ``group``, ``variant``, ``status`` and one ``grid/<key>`` per grid value."""
        from .reporting.runs import records_frame

        frame = records_frame(self.runs)
        by_dir = {str(self.index.run_path(entry)): entry for entry in self.index.runs}
        entries = [by_dir[run_dir] for run_dir in frame["run_dir"]] if len(frame) else []
        for column in ("key", "label", "group", "variant", "status"):
            frame[column] = [getattr(entry, column) for entry in entries]
        grid_keys = sorted({key for entry in self.index.runs for key in entry.grid})
        for key in grid_keys:
            frame[f"grid/{key}"] = [entry.grid.get(key) for entry in entries]
        return frame


def _has_results(run_dir: Path) -> bool:
    path = run_dir / RESULTS_FILE
    return path.is_file() and path.stat().st_size > 0


def load_study(study_dir: str | Path) -> Study:
    """A study directory made by ``fomo-host sweep``: its index and the runs that have evaluations so far."""
    from .reporting.runs import load_runs
    from .study import read_index

    index = read_index(Path(study_dir))
    seeds_per_group: dict[int, int] = {}
    for entry in index.runs:
        seeds_per_group[entry.group] = seeds_per_group.get(entry.group, 0) + 1
    with_results = [entry for entry in index.runs if _has_results(index.run_path(entry))]
    labels: list[str | None] = [
        f"{entry.label} seed {entry.seed}" if seeds_per_group[entry.group] > 1 else entry.label for entry in with_results
    ]
    runs = load_runs([index.run_path(entry) for entry in with_results], labels) if with_results else []
    return Study(Path(study_dir), index, runs)
