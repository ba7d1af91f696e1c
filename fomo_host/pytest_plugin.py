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
