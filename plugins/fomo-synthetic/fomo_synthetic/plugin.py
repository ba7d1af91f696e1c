"""The fomo-host hook implementation: registers the ``synthetic`` dataset component."""

from __future__ import annotations

from collections.abc import Callable

from fomo_host.api import hookimpl

from .build import SyntheticParams, build_synthetic_datasets


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    """Register the synthetic datasets under the name ``synthetic``."""
    register(name="synthetic", factory=build_synthetic_datasets, params=SyntheticParams)
