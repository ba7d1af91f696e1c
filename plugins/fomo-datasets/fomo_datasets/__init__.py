"""fomo-datasets: real image-text data for fomo-host, decoded once into a memory-mapped cache.

The decoded-image cache lives in :mod:`fomo_datasets.cache`; this package's root imports
nothing heavy, since the host imports it whenever it lists plugins.
"""

__version__ = "0.1.0"
