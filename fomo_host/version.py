"""The host's version: a leaf module, so that what stamps it (deployed weights, warm-start caches, reports) need not
import the ``fomo_host`` package's front door (which reaches the Python API)."""

__version__ = "0.1.0"
