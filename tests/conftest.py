"""Shared fixtures: a per-session cache for warm-started base models, and a small spec on the embedded data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fomo_host.testing.tiny_spec import tiny_spec

SMALL_SPEC = tiny_spec(num_tasks=12345, steps=67890).replace("12345", "{num_tasks}").replace("67890", "{steps}")
"""The tiny spec as a template of its stream length (``num_tasks``, ``steps``)."""


@pytest.fixture(scope="session", autouse=True)
def fomo_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Warm-started base models are cached for the whole session (or reused from FOMO_CACHE_DIR when CI sets it).

    Under pytest-xdist the workers share one folder (the parent of their own temporary roots): the cache's entries are
    written atomically (a temporary file, then a rename), so two workers may fill the same entry at once."""
    configured = os.environ.get("FOMO_CACHE_DIR")
    if configured:
        path = Path(configured)
    else:
        root = tmp_path_factory.getbasetemp()
        path = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "fomo-cache"
        path.mkdir(parents=True, exist_ok=True)
    os.environ["FOMO_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def small_spec_text() -> str:
    """The small embedded spec as a template (``num_tasks``, ``steps``), for fixtures wider than one test."""
    return SMALL_SPEC


@pytest.fixture
def small_spec(tmp_path: Path):
    """Write the small embedded spec with a given stream length; returns its path."""

    def write(num_tasks: int = 3, steps: int = 4, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(SMALL_SPEC.format(num_tasks=num_tasks, steps=steps), encoding="utf-8")
        return path

    return write
