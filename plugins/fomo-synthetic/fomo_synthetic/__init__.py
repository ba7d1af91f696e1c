"""fomo-synthetic: procedurally drawn image-text datasets for fomo-host (no downloads, deterministic by seed)."""

from .build import SyntheticParams, build_synthetic_datasets

__all__ = ["SyntheticParams", "__version__", "build_synthetic_datasets"]
__version__ = "0.1.0"
