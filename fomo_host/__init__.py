"""fomo-host: a plugin host for continual multimodal pretraining (FoMo-in-Flux protocol).

From Python: ``fomo_host.run(spec, overrides=..., output=...)``, ``fomo_host.update(run_dir, data=..., tasks=...)``,
``fomo_host.load_run(dir)``, ``fomo_host.load_study(dir)``
(see :mod:`fomo_host.python_api`). Plugins import from :mod:`fomo_host.api`.
"""

from typing import Any

from .hookspecs import PROJECT_NAME, hookimpl
from .version import __version__

__all__ = ["PROJECT_NAME", "Run", "Study", "hookimpl", "load_run", "load_study", "run", "update", "__version__"]

_PYTHON_API = {"run", "update", "load_run", "load_study", "Run", "Study"}


def __getattr__(name: str) -> Any:
    # imported on first use: ``from fomo_host import hookimpl`` in a plugin must not load the engine
    if name in _PYTHON_API:
        from . import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'fomo_host' has no attribute {name!r}")
