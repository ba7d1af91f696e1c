"""The pytest plugin of fomo-host's conformance suites (entry point ``pytest11``): registers their markers.

Imported by pytest in every session where fomo-host is installed, so it imports nothing
but pytest: the suites themselves load when a test module imports them.
"""

from __future__ import annotations

import pytest

MARKERS = {
    "slow": "long tests (end-to-end runs, several processes); deselect with -m 'not slow'",
    "fomo_conformance": "a test of a fomo-host conformance suite (fomo_host.testing)",
    "multiprocess": "starts several processes (accelerate launch on the CPU); deselect with -m 'not multiprocess'",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``), each conformance class runs on one worker: its tests share one
    class-scoped run, which two workers would each compute. A suite whose classes share more than that (a cache in the
    test process) names one group for all of them in ``conformance_group``."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        owner = getattr(item, "cls", None)
        if owner is not None and item.get_closest_marker("fomo_conformance") and item.get_closest_marker("xdist_group") is None:
            group = getattr(owner, "conformance_group", None) or f"{owner.__module__}.{owner.__qualname__}"
            item.add_marker(pytest.mark.xdist_group(group))
