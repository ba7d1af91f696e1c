"""fomo-host: a plugin host for continual multimodal pretraining (FoMo-in-Flux protocol)."""

from .hookspecs import PROJECT_NAME, hookimpl

__all__ = ["PROJECT_NAME", "hookimpl", "__version__"]
__version__ = "0.1.0"
