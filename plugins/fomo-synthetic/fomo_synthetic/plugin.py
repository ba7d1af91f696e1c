"""The fomo-host hook implementation: registers the ``synthetic`` dataset component (drawing code loads when it is built)."""

from __future__ import annotations

from fomo_host.api import DatasetRegister, hookimpl

from .params import SyntheticParams


@hookimpl
def register_datasets(register: DatasetRegister) -> None:
    """Register the synthetic datasets under the name ``synthetic``."""
    register(
        name="synthetic",
        factory="fomo_synthetic.build:build_synthetic_datasets",
        params=SyntheticParams,
        description="Procedurally drawn image-text data in nine domains: a pretraining pool, adaptation and zero-shot sets.",
    )
