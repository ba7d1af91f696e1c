"""Evaluation split across processes: each evaluates a balanced share of the sets, and the shares put together are
exactly the one-process evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fomo_host.components import BuildContext, EvaluationContext
from fomo_host.engine.evaluation import evaluate, evaluate_shard, plan_evaluation, shard_plan, subset_indices
from fomo_host.engine.runtime import Runtime
from fomo_host.plugins import load_plugins
from fomo_host.resolve import resolve_component
from fomo_host.spec import ComponentRef

SYNTHETIC_DATA: dict[str, Any] = {
    "pool_train_per_class": 8,
    "train_per_class": 8,
    "test_per_class": 4,
    "adaptation": ["shapes-new", "digits-new"],
    "zero_shot": ["shapes-outline"],
}
"""The synthetic plugin's small stream (2 adaptation sets, a pool, a held-out set)."""


def test_shards_balance_the_samples_and_cover_every_set_once():
    sizes = [100, 10, 60, 50, 40, 5]
    shards = shard_plan(sizes, 2)
    assert sorted(position for shard in shards for position in shard) == list(range(len(sizes)))
    loads = [sum(sizes[position] for position in shard) for shard in shards]
    assert loads == [140, 125]  # 100, 40 | 60, 50, 10, 5: largest first, each to the lighter process
    assert shard_plan(sizes, 1) == [list(range(len(sizes)))]
    assert shard_plan([3], 4) == [[0], [], [], []]  # more processes than sets: some evaluate none


def test_the_shards_of_two_processes_together_are_the_one_process_evaluation(fomo_cache_dir: Path):
    host = load_plugins()
    context = BuildContext(seed=0, cache_dir=fomo_cache_dir)
    torch.manual_seed(0)
    bundle = resolve_component(host.registry, "model", ComponentRef(name="tiny-clip"), "model").build(context)
    context.image_size = bundle.image_size
    data = {**SYNTHETIC_DATA, "retrieval_test": 16, "adaptation": ["letters", "relations", "digits-new"]}
    datasets = resolve_component(host.registry, "dataset", ComponentRef(name="synthetic", params=data), "data").build(context)
    datasets = [d for d in datasets if d.test is not None and len(d.test)]
    metrics = [
        (name, resolve_component(host.registry, "metric", ComponentRef(name=name), "m").build())
        for name in ("zero-shot-accuracy", "retrieval-recall")
    ]
    plan = plan_evaluation(datasets, metrics)
    runtime = Runtime.create("no", cpu=True)

    metrics_one, scores_one = evaluate(runtime, bundle, plan, 32, 0.5, torch.Generator().manual_seed(5))

    generator = torch.Generator().manual_seed(5)
    subsets = [subset_indices(len(entry.dataset.test), 0.5, generator) for entry in plan]
    sizes = [len(subset) for subset in subsets]
    evaluation_context = EvaluationContext(device=torch.device("cpu"), batch_size=32, autocast=runtime.autocast)
    together: dict[int, tuple[dict[str, float], float]] = {}
    for shard in shard_plan(sizes, 2):
        assert shard, "each of the two processes evaluates some set"
        together |= evaluate_shard(bundle, plan, shard, subsets, evaluation_context)
    assert {plan[position].dataset.name: values for position, (values, _) in together.items()} == metrics_one
    assert {plan[position].dataset.name: score for position, (_, score) in together.items()} == scores_one
