"""Pretraining the base model on the pretraining pool before the stream, cached by content hash.

The embedded quickstart has no downloadable checkpoint, so its tiny CLIP learns
the base concepts here first. The result depends only on the model spec, the
warm-start settings, the pool's content and the seed, so it is computed once
and loaded by every later run (and test) with the same inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..components import ModelBundle, ParamGroup
from ..data import SampleSet, TensorSampleSet
from ..model_inputs import TokenCache
from ..spec import ModelSection, OptimizerSection, WarmStart
from ..version import __version__
from ..weights import load_weights, save_weights
from .loader import DeviceTransfer, LoaderSettings, TaskBatches
from .mixture import UPDATE_ONLY, MixedBatches, Pool, Pools, Segment
from .runtime import Runtime, derive_seed
from .training import HostAdamW, ProgressCallback, StepLoop, TaskOptimizers, TrainingStep


def sample_set_fingerprint(samples: SampleSet) -> str:
    """A content hash of a sample set (its own ``fingerprint()`` where it has one)."""
    own = getattr(samples, "fingerprint", None)
    if callable(own):
        return str(own())
    digest = hashlib.sha256()
    if isinstance(samples, TensorSampleSet):
        digest.update(samples.image_tensor.contiguous().numpy().tobytes())
        digest.update(samples.labels.numpy().tobytes())
        digest.update(json.dumps(samples.caption_choices).encode())
    else:
        digest.update(f"{type(samples).__qualname__}:{len(samples)}".encode())
    return digest.hexdigest()


def warm_start_key(model: ModelSection, settings: WarmStart, pool: Sequence[SampleSet], seed: int) -> str:
    content = {
        "model": model.model_dump(mode="json", exclude={"warm_start"}),
        # which datasets is in the pool's content below; their names alone change nothing
        "warm_start": settings.model_dump(mode="json", exclude={"data"}),
        "pool": [sample_set_fingerprint(s) for s in pool],
        "seed": seed,
        "host": __version__,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def warmup_cosine(steps: int, warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps + 1) / max(steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def warm_start_path(model_spec: ModelSection, pool: Sequence[SampleSet], seed: int, cache_dir: Path) -> Path:
    """Where the warm-started base model is cached (whether or not it is there yet)."""
    settings = model_spec.warm_start
    assert settings is not None
    return cache_dir / "base-models" / f"{warm_start_key(model_spec, settings, pool, seed)}.safetensors"


def warm_start(
    runtime: Runtime,
    bundle: ModelBundle,
    model_spec: ModelSection,
    pool: Sequence[SampleSet],
    seed: int,
    cache_dir: Path,
    on_step: ProgressCallback | None = None,
    loader: LoaderSettings | None = None,
    path: Path | None = None,
) -> Path:
    """Train ``bundle.model`` in place on the pool (or load the cached result); returns the cache file.

    ``path``: the cache file, where the caller has already found it with :func:`warm_start_path`.
    """
    settings = model_spec.warm_start
    assert settings is not None
    path = path or warm_start_path(model_spec, pool, seed, cache_dir)
    if path.is_file():
        bundle.model.load_state_dict(load_weights(path), strict=True)
        return path

    optimizer_spec = OptimizerSection(name="adamw", lr=settings.lr, weight_decay=settings.weight_decay, grad_clip=1.0)
    model = bundle.model
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    optimizer = TaskOptimizers(optimizer_spec, HostAdamW(), runtime.device).build([ParamGroup(list(model.parameters()))])
    generator = torch.Generator().manual_seed(derive_seed(seed, "warm-start"))
    torch.manual_seed(derive_seed(seed, "warm-start", "torch"))
    update = Pool([Segment(samples, torch.arange(len(samples))) for samples in pool])
    batches = MixedBatches(Pools.update_only(update), settings.batch_size, UPDATE_ONLY, generator)
    loop = StepLoop(
        step=TrainingStep(model, optimizer, optimizer_spec, runtime.mixed_precision, forward_model=runtime.wrap_for_training(model)),
        lr_factor=warmup_cosine(settings.steps, settings.warmup_steps),
        device=runtime.device,
    )
    with TaskBatches(batches, DeviceTransfer(runtime, bundle, TokenCache(bundle)), settings.steps, settings=loader) as device_batches:
        loop.run(device_batches, settings.steps, on_step)
    if runtime.is_main:
        save_weights(model.state_dict(), path)
    runtime.barrier()
    return path
