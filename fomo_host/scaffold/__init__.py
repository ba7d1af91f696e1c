"""A new plugin package, written from templates: pyproject with the entry point, Params, a working component, a README,
its conformance test, a noxfile and a CI workflow (what ``fomo-host new-plugin`` writes), for every kind of component.

The generated package imports ``fomo_host.api`` and ``fomo_host.testing`` only, installs with ``pip install -e .``
and passes its conformance suite as generated: a starting point that already conforms.
"""

from __future__ import annotations

from pathlib import Path

from .data import DATASET, METRIC, MODEL, ORDERING
from .package import PACKAGE_NAME, KindTemplate, files_of
from .package import write_plugin as write_package
from .running import LAUNCHER, LOGGER
from .training import MERGE_OPERATOR, MERGER, METHOD, OPTIMIZER, SCHEDULER

TEMPLATES: dict[str, KindTemplate] = {
    template.kind: template
    for template in (MODEL, DATASET, ORDERING, METHOD, OPTIMIZER, SCHEDULER, MERGER, MERGE_OPERATOR, METRIC, LAUNCHER, LOGGER)
}
"""The kinds ``new-plugin`` scaffolds, by kind (as ``fomo-host plugins --kind`` names them): every registered kind."""


def write_plugin(name: str, kind: str, directory: Path) -> Path:
    """Write the package ``name`` for a component of ``kind`` into ``directory/name``."""
    return write_package(name, TEMPLATES[kind], directory)


__all__ = ["PACKAGE_NAME", "TEMPLATES", "KindTemplate", "files_of", "write_plugin"]
