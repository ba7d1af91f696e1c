"""The repository's pytest-xdist scheduling (host and plugin tests alike; ``addopts`` runs ``-n 2 --dist loadgroup``).

Under ``loadgroup`` a test without an ``xdist_group`` goes to whichever worker is free, so the tests of one module
could land on both workers and each worker would compute the module's shared fixtures (a tiny run, a sweep) once:
twice the work those fixtures exist to save. Each test that uses a module- or class-scoped fixture is put in the
group of its module (or class), so that group runs on one worker and the fixture is computed once.

Each worker computes on one CPU thread (``OMP_NUM_THREADS=1`` unless set, inherited by the runs it starts): two
workers each running torch's default team of one thread per core would fight over the cores.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_scope(item: pytest.Item) -> str | None:
    """The widest scope below session among the fixtures ``item`` uses: ``"module"``, ``"class"`` or None."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    scopes = {definitions[-1].scope for definitions in info.name2fixturedefs.values() if definitions}
    return "module" if "module" in scopes else "class" if "class" in scopes else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None or item.get_closest_marker("fomo_conformance") is not None:
            continue  # a conformance test is grouped by the host's pytest plugin (fomo_host.pytest_plugin)
        scope = shared_scope(item)
        if scope == "module" or (scope == "class" and getattr(item, "cls", None) is None):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
        elif scope == "class":
            item.add_marker(pytest.mark.xdist_group(item.nodeid.rsplit("::", 1)[0]))  # the class's node id
