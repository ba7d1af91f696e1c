"""fomo-synthetic: procedurally drawn image-text datasets for fomo-host (no downloads, deterministic by seed).

The generator lives in :mod:`fomo_synthetic.build`; this package's root imports nothing
heavy, since the host imports it whenever it lists plugins.
"""

__version__ = "0.1.0"
