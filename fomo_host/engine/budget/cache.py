"""Measured step costs cached as JSON under the cache directory (``budget/``), keyed by everything they depend on."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...components import BuildContext, ModelBundle
from ...errors import FomoError
from ...resolve import ResolvedComponent
from ...spec import RunSpec
from ...stored import CachedStepCost, read_stored
from .arithmetic import StepCost
from .measurement import measure_cost

MEASURE_VERSION = 2
"""Part of the cache key: raise it when the measurement changes what it counts."""


def cost_key(
    spec: RunSpec, model: ResolvedComponent, method: ResolvedComponent, optimizer: ResolvedComponent, measure: str, precision: str
) -> dict[str, Any]:
    """Everything the measured cost depends on."""
    key: dict[str, Any] = {
        "version": MEASURE_VERSION,
        "torch": torch.__version__,
        "model": {"name": model.name, "params": model.ref.params, "provider": str(model.component.provider)},
        "method": {"name": method.name, "params": method.ref.params, "provider": str(method.component.provider)},
        "batch_size": spec.run.batch_size,
        "precision": precision,
        "optimizer": {"name": optimizer.name, "params": optimizer.ref.params, "provider": str(optimizer.component.provider)},
        "two_tasks": spec.data.num_tasks > 1,
        "memory_measure": measure,
    }
    if measure == "cuda":
        key["gpu"] = torch.cuda.get_device_name()
        key["activation_checkpointing"] = spec.run.activation_checkpointing
    return key


def read_cached_cost(path: Path) -> StepCost | None:
    """A cached measurement; None when there is none, or the file is damaged (then it is measured again and replaced)."""
    if not path.is_file():
        return None
    try:
        record = read_stored(CachedStepCost, path)
    except FomoError:
        return None
    cost = record.cost
    return StepCost(float(cost.step_gflops), float(cost.end_task_gflops), cost.peak_memory_bytes, cost.memory_measure)


def cached_step_costs(
    spec: RunSpec,
    model: ResolvedComponent,
    trained: list[tuple[ResolvedComponent, ResolvedComponent]],
    measure: str,
    precision: str,
    cache_dir: Path,
) -> list[StepCost]:
    """Each (method, optimizer)'s cost on the spec's model and batch, from the cache or measured now (and cached)."""
    paths, keys = [], {}
    for method, optimizer in trained:
        key = cost_key(spec, model, method, optimizer, measure, precision)
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = cache_dir / "budget" / f"{method.name}-{digest}.json"
        paths.append(path)
        keys[path] = (method, optimizer, key)
    costs = {path: cost for path in keys if (cost := read_cached_cost(path)) is not None}
    missing = [path for path in keys if path not in costs]
    if missing:
        from ..runtime import preserved_rng

        with preserved_rng():
            built: ModelBundle = model.build(BuildContext(seed=spec.run.seed, cache_dir=cache_dir))
            for path in missing:
                method, optimizer, key = keys[path]
                costs[path] = cost = measure_cost(spec, method, optimizer, measure, built, precision)
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                temporary.write_text(json.dumps({"key": key, "cost": asdict(cost)}, indent=2, sort_keys=True, default=str) + "\n")
                temporary.replace(path)
    return [costs[path] for path in paths]
