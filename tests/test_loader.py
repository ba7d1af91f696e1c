"""The batch loader: prefetching and worker processes never change the batches; a task starts at any step; the
loader thread and worker processes end with the task however it ends."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from fomo_host.components import ModelBundle, TrainBatch
from fomo_host.data import TensorSampleSet
from fomo_host.engine.loader import DeviceTransfer, LoaderSettings, TaskBatches
from fomo_host.engine.mixture import MixedBatches, Pool, Pools, Segment
from fomo_host.engine.runtime import Runtime
from fomo_host.engine.training import TaskDataAccess
from fomo_host.errors import FomoError
from fomo_host.model_inputs import TokenCache
from fomo_host.spec import Mixture

SIZE = 8


def tokenize(captions: Sequence[str]) -> torch.Tensor:
    return torch.tensor([[len(c), sum(map(ord, c)) % 997] for c in captions])


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime.create("no", cpu=True)


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return ModelBundle(nn.Identity(), tokenize, SIZE, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))


def sample_set(count: int, seed: int) -> TensorSampleSet:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    captions = [[f"set {seed} sample {i} caption {k}" for k in range(1 + i % 3)] for i in range(count)]
    return TensorSampleSet(images, torch.zeros(count, dtype=torch.long), captions)


class FailingSampleSet(TensorSampleSet):
    """Raises on the ``fail_at``-th read, the way an unreadable file does mid-task."""

    fail_at = 3
    reads = 0

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        type(self).reads += 1
        if type(self).reads >= self.fail_at:
            raise FomoError("dataset 'x': image 7 is unreadable")
        return super().images(indices)


def mixed(seed: int = 3, pool_set: TensorSampleSet | None = None) -> MixedBatches:
    first, second = pool_set or sample_set(40, 1), sample_set(30, 2)
    pools = Pools(
        pretraining=Pool([Segment(first, torch.arange(40))]),
        update=Pool([Segment(second, torch.arange(10, 30)), Segment(first, torch.arange(5))]),
        buffer=Pool([Segment(second, torch.arange(10))]),
    )
    return MixedBatches(pools, 12, Mixture(pretraining=0.25, update=0.5, buffer=0.25), torch.Generator().manual_seed(seed))


def collect(runtime: Runtime, bundle: ModelBundle, steps: int, start: int = 0, **settings: int) -> list[TrainBatch]:
    transfer = DeviceTransfer(runtime, bundle, TokenCache(bundle))
    with TaskBatches(mixed(), transfer, steps, start_step=start, settings=LoaderSettings(**settings)) as batches:
        return list(batches)


def assert_same(left: list[TrainBatch], right: list[TrainBatch]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.tokens, b.tokens)


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fomo-batch-loader"]


def test_batches_are_the_mixture_plans_normalised_and_tokenised(runtime, bundle):
    (batch,) = collect(runtime, bundle, 1, prefetch=0)
    batches = mixed()
    images, captions = batches.next_batch()
    mean, std = torch.tensor(bundle.image_mean).view(1, 3, 1, 1), torch.tensor(bundle.image_std).view(1, 3, 1, 1)
    assert torch.allclose(batch.images, (images.float() / 255 - mean) / std)
    assert torch.equal(batch.tokens, tokenize(captions))


@pytest.mark.parametrize("settings", [{"prefetch": 1}, {"prefetch": 3}, {"prefetch": 2, "workers": 2}, {"prefetch": 0, "workers": 1}])
def test_prefetch_and_workers_give_exactly_the_batches_of_the_plain_loop(runtime, bundle, settings):
    assert_same(collect(runtime, bundle, 9, prefetch=0), collect(runtime, bundle, 9, **settings))
    assert not loader_threads()
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("settings", [{"prefetch": 0}, {"prefetch": 2, "workers": 2}])
def test_a_task_started_at_step_k_sees_the_kth_batch_onward_of_a_full_pass(runtime, bundle, settings):
    full = collect(runtime, bundle, 10, prefetch=0)
    assert_same(collect(runtime, bundle, 10, start=6, **settings), full[6:])
    assert collect(runtime, bundle, 10, start=10, **settings) == []


def test_skipping_reads_no_image():
    class Counting(TensorSampleSet):
        reads = 0

        def images(self, indices: torch.Tensor) -> torch.Tensor:
            type(self).reads += 1
            return super().images(indices)

    base = sample_set(40, 1)
    batches = mixed(pool_set=Counting(base.image_tensor, base.labels, base.caption_choices))
    batches.skip(50)
    assert Counting.reads == 0


@pytest.mark.parametrize("settings", [{"prefetch": 0}, {"prefetch": 2}, {"prefetch": 2, "workers": 2}])
def test_an_error_while_loading_reaches_the_loop_and_leaves_no_thread_or_process(runtime, bundle, settings):
    base = sample_set(40, 1)
    FailingSampleSet.reads = 0
    failing = FailingSampleSet(base.image_tensor, base.labels, base.caption_choices)
    transfer = DeviceTransfer(runtime, bundle, TokenCache(bundle))
    seen = 0
    batches = TaskBatches(mixed(pool_set=failing), transfer, 10, settings=LoaderSettings(**settings))
    with pytest.raises(FomoError, match="^dataset 'x': image 7 is unreadable$"), batches:
        for _ in batches:
            seen += 1
    assert seen < 10
    assert not loader_threads()
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, StopIteration])
@pytest.mark.parametrize("settings", [{"prefetch": 2}, {"prefetch": 3, "workers": 2}])
def test_an_interrupted_or_abandoned_task_stops_the_loader(runtime, bundle, settings, interruption):
    transfer = DeviceTransfer(runtime, bundle, TokenCache(bundle))
    try:
        with TaskBatches(mixed(), transfer, 50, settings=LoaderSettings(**settings)) as batches:
            next(batches)
            raise interruption  # Ctrl-C in the step, or a loop that leaves early
    except interruption:
        pass
    assert not loader_threads()
    assert not multiprocessing.active_children()


def test_end_of_task_batches_do_not_depend_on_how_they_are_asked_for(runtime, bundle):
    pool = Pool([Segment(sample_set(30, 5), torch.arange(30))])

    def access(prefetch: int) -> TaskDataAccess:
        return TaskDataAccess.from_pool(runtime, bundle, TokenCache(bundle), pool, 8, seed=11, loader=LoaderSettings(prefetch=prefetch))

    at_once = list(access(0).batches(6))
    split = access(2)
    pieces = list(split.batches(2))
    for batch in split.batches(10):  # a method that stops early after one batch
        pieces.append(batch)
        break
    pieces += list(split.batches(3))
    assert_same(at_once, pieces)


def test_start_step_outside_the_task_is_a_programming_error(runtime, bundle):
    with pytest.raises(ValueError, match="outside"):
        TaskBatches(mixed(), DeviceTransfer(runtime, bundle, TokenCache(bundle)), 5, start_step=6)


@pytest.mark.slow
def test_a_run_gives_the_same_results_with_and_without_prefetch_and_workers(small_spec, tmp_path):
    spec = small_spec(num_tasks=2, steps=3)
    results = []
    for name, overrides in (("plain", ["data.prefetch=0"]), ("prefetched", ["data.prefetch=2", "data.workers=2"])):
        run_dir = tmp_path / name
        command = [sys.executable, "-m", "fomo_host.cli", "run", str(spec), "--output", str(run_dir)]
        for override in overrides:
            command += ["--set", override]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ.copy())
        assert finished.returncode == 0, finished.stderr[-3000:]
        lines = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
        results.append([{k: v for k, v in record.items() if k != "eval_seconds"} for record in lines])
    assert results[0] == results[1]
