"""Conformance tests for study launchers: subclass :class:`LauncherConformance` in your plugin's tests.

::

    from fomo_host.testing import LauncherConformance

    class TestMyLauncher(LauncherConformance):
        launcher_name = "my-cluster"
        params = {"queue": "debug"}
        invalid_params = {"queue": ""}

A subclass gets: the params validate, and an unknown key and ``invalid_params``
are rejected; a real study of tiny runs (2 points x 2 seeds, 2 tasks of 3 steps
of the tiny CLIP on the synthetic data) run through ``fomo-host sweep`` with the
launcher finishes every run, and every run's results equal those of the same run
started by hand (``fomo-host run BASE --set ...``); a study with a point that
fails at run time records that run as failed with its error and finishes the
others. Override :meth:`launcher_params` where the params are known only at test
time (the address of a cluster a fixture started).

The runs need nothing but the host and the plugin under test: their model, data,
ordering, scheduler, metric and merger are the host's toy components
(:mod:`fomo_host.testing.toy_plugin`), which the runs' processes load through the
environment variable ``FOMO_PLUGIN_MODULES``: a launcher must pass the environment of
``fomo-host sweep`` on to the runs it starts (as it does ``FOMO_CACHE_DIR``; a remote
cluster gets it as its own setting, e.g. Ray's ``runtime_env``). Runs use one CPU thread each: the launcher's params must give
each run one thread (the by-hand runs get one too), as the results of a run are
exactly reproducible for a given thread count. Warm-started base models are
cached in ``$FOMO_CACHE_DIR`` if set, else in one directory per test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
import tomli_w
from pydantic import ValidationError

from ..plugins import load_plugins
from ..study.index import read_index
from ..study.launching import thread_variables
from .methods import TOY_DATA, comparable_records
from .toy_plugin import DATA, METHOD, METRIC, MODEL, OPTIMIZER, ORDERING, RECORDER, SCHEDULER, toy_environment

CLI = [sys.executable, "-m", "fomo_host.cli"]
TINY_SPEC: dict[str, Any] = {
    "run": {"name": "launcher-conformance", "seed": 0, "batch_size": 16, "cpu": True},
    "model": {"name": MODEL},
    "data": {"sources": [{"name": DATA, "params": dict(TOY_DATA)}], "ordering": {"name": ORDERING}, "num_tasks": 2},
    "budget": {"steps_per_task": 3},
    "optimizer": {"name": OPTIMIZER, "lr": 1e-3},
    "method": {"name": METHOD},
    "scheduler": {"name": SCHEDULER},
    "merger": {"name": RECORDER},
    "evaluation": {"batch_size": 64, "metrics": [{"name": METRIC}]},
}
"""The tiny runs' base spec: the method conformance suite's toy model and data."""
GRID = {"optimizer.lr": [1e-3, 5e-4]}
SEEDS = [0, 1]
BROKEN_OVERRIDE = "data.num_tasks=500"
"""Valid as a spec, but the stream has far fewer concepts: the run fails when it starts, with one error line."""

_by_hand: dict[tuple[str, ...], list[dict[str, Any]]] = {}
_by_hand_lock = threading.Lock()


def run_by_hand(base: Path, overrides: list[str], run_dir: Path) -> None:
    """``fomo-host run BASE --set ... --output RUN_DIR`` with one CPU thread, as a user starts it."""
    arguments = [*CLI, "run", str(base)]
    for override in overrides:
        arguments += ["--set", override]
    environment = {**os.environ, **thread_variables(1), **toy_environment()}
    result = subprocess.run([*arguments, "--output", str(run_dir), "--quiet"], capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise AssertionError(f"run by hand failed ({result.returncode}): {' '.join(arguments)}\n{result.stderr[-3000:]}")


def records_by_hand(base: Path, runs: list[list[str]], work_dir: Path) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """The records of runs started by hand (two at a time), computed once per test session for each list of overrides."""
    with _by_hand_lock:
        missing = [overrides for overrides in runs if tuple(overrides) not in _by_hand]
        threads = []
        for index, overrides in enumerate(missing):
            run_dir = work_dir / f"by-hand-{len(_by_hand) + index}"
            threads.append((overrides, run_dir, threading.Thread(target=run_by_hand, args=(base, overrides, run_dir))))
        errors: list[BaseException] = []
        for start in range(0, len(threads), 2):
            pair = threads[start : start + 2]
            for _, _, thread in pair:
                thread.start()
            for _, _, thread in pair:
                thread.join()
        for overrides, run_dir, _ in threads:
            if not (run_dir / "summary.json").is_file():
                errors.append(AssertionError(f"by-hand run {overrides} did not finish"))
                continue
            _by_hand[tuple(overrides)] = comparable_records(run_dir)
        if errors:
            raise errors[0]
        return {tuple(overrides): _by_hand[tuple(overrides)] for overrides in runs}


class LauncherConformance:
    """The conformance suite of the ``launcher`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]
    conformance_group: ClassVar[str] = "fomo-launcher-conformance"
    """Under pytest-xdist, every launcher class of a session runs on one worker: the runs by hand they compare
    against are computed once per test process (:func:`records_by_hand`), not once per worker."""

    launcher_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    """The launcher's params for the studies (each run must get one CPU thread)."""
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the launcher must reject (None: only the unknown-key check)."""
    timeout_s: ClassVar[float] = 900.0
    """How long a study of the suite may take before the test fails."""

    def launcher_params(self) -> dict[str, Any]:
        """The params the studies use; override where they are known only at test time."""
        return dict(self.params)

    # ------------------------------------------------------------------ helpers

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_dir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The base spec and the by-hand runs; warm starts go to FOMO_CACHE_DIR (one per session if unset)."""
        if not os.environ.get("FOMO_CACHE_DIR"):
            os.environ["FOMO_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "fomo-conformance-cache")
        directory = tmp_path_factory.mktemp(f"launcher-{cls.launcher_name}")
        (directory / "base.toml").write_text(tomli_w.dumps(TINY_SPEC), encoding="utf-8")
        return directory

    def write_study(self, directory: Path, name: str, grid: dict[str, list[Any]], seeds: list[int], variants: list[dict[str, Any]]) -> Path:
        study: dict[str, Any] = {"base": "base.toml", "seeds": seeds, "grid": grid, "variants": variants}
        study["launcher"] = {"name": self.launcher_name, "params": self.launcher_params()}
        path = directory / f"{name}.toml"
        path.write_text(tomli_w.dumps(study), encoding="utf-8")
        return path

    def sweep(self, study: Path, study_dir: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "sweep", str(study), "--output", str(study_dir)],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            env={**os.environ, **toy_environment()},
        )

    # ------------------------------------------------------------------ tests

    def test_params_validate_and_reject_bad_values(self) -> None:
        component = load_plugins().registry.get("launcher", self.launcher_name)
        component.validate_params(self.launcher_params())
        with pytest.raises(ValidationError):
            component.validate_params({**self.launcher_params(), "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                component.validate_params({**self.launcher_params(), **self.invalid_params})

    @pytest.mark.slow
    def test_study_matches_runs_started_by_hand(self, conformance_dir: Path) -> None:
        study = self.write_study(conformance_dir, "grid", GRID, SEEDS, [])
        study_dir = conformance_dir / "grid-study"
        result = self.sweep(study, study_dir)
        assert result.returncode == 0, f"sweep failed ({result.returncode}):\n{result.stderr[-4000:]}"
        index = read_index(study_dir)
        assert len(index.runs) == len(GRID["optimizer.lr"]) * len(SEEDS)
        assert [run.status for run in index.runs] == ["finished"] * len(index.runs), [(r.key, r.status, r.error) for r in index.runs]
        assert len(index.groups()) == len(GRID["optimizer.lr"])
        by_hand = records_by_hand(conformance_dir / "base.toml", [run.overrides for run in index.runs], conformance_dir)
        for run in index.runs:
            assert comparable_records(index.run_path(run)) == by_hand[tuple(run.overrides)], f"{run.key} differs from the run by hand"
            summary = json.loads((index.run_path(run) / "summary.json").read_text(encoding="utf-8"))
            assert summary["tasks_done"] == TINY_SPEC["data"]["num_tasks"]

    @pytest.mark.slow
    def test_failing_run_does_not_stop_the_others(self, conformance_dir: Path) -> None:
        variants = [
            {"label": "broken", "set": {BROKEN_OVERRIDE.split("=")[0]: int(BROKEN_OVERRIDE.split("=")[1])}},
            {"label": "fine", "set": {"optimizer.lr": GRID["optimizer.lr"][0]}},
        ]
        study = self.write_study(conformance_dir, "failing", {}, [SEEDS[0]], variants)
        study_dir = conformance_dir / "failing-study"
        result = self.sweep(study, study_dir)
        assert result.returncode == 1, f"a failed run must make the sweep exit 1, got {result.returncode}:\n{result.stderr[-4000:]}"
        index = read_index(study_dir)
        broken, fine = (next(run for run in index.runs if run.variant == label) for label in ("broken", "fine"))
        assert broken.status == "failed" and broken.error and "num_tasks" in broken.error, broken
        assert fine.status == "finished", fine
        by_hand = records_by_hand(conformance_dir / "base.toml", [fine.overrides], conformance_dir)
        assert comparable_records(index.run_path(fine)) == by_hand[tuple(fine.overrides)]
        assert "failed: " in result.stderr and broken.key in result.stderr
