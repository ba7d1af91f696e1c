"""fomo-datasets: real image-text data for fomo-host, decoded once into a memory-mapped cache."""

from .cache import ImageCache, MemmapSampleSet

__all__ = ["ImageCache", "MemmapSampleSet", "__version__"]
__version__ = "0.1.0"
