"""The engine's pieces: stream cutting, batch mixing, results aggregation, weight store."""

from __future__ import annotations

import math

import pytest
import torch

from fomo_host.data import Concept, ImageTextDataset, TensorSampleSet
from fomo_host.engine.mixture import EpochSampler, MixedBatches, Pool, Pools, Segment, batch_shares
from fomo_host.engine.stream import build_tasks, cut_into_tasks
from fomo_host.errors import SpecError
from fomo_host.results import aggregate, summarise
from fomo_host.spec import Mixture
from fomo_host.weights import WeightStore


def concepts(n: int) -> list[Concept]:
    return [Concept("d", f"c{i}") for i in range(n)]


def test_cut_into_tasks_gives_near_equal_contiguous_chunks():
    tasks = cut_into_tasks(concepts(11), 4)
    assert [len(t) for t in tasks] == [3, 3, 3, 2]
    assert [c for t in tasks for c in t] == concepts(11)
    with pytest.raises(SpecError, match="only 3 concepts"):
        cut_into_tasks(concepts(3), 4)


def test_build_tasks_checks_the_ordering_returns_every_concept_once():
    assert build_tasks(concepts(4), lambda c, n: list(reversed(c)), 2) == [concepts(4)[3:1:-1], concepts(4)[1::-1]]
    assert build_tasks(concepts(4), lambda c, n: [c[:1], c[1:]], 2) == [concepts(4)[:1], concepts(4)[1:]]
    with pytest.raises(SpecError, match="exactly once"):
        build_tasks(concepts(4), lambda c, n: c[:3], 2)


def test_concept_parses_ours_and_the_papers_format():
    assert Concept.parse("DTD+++banded") == Concept("DTD", "banded")
    assert Concept.parse("dtd::banded") == Concept("dtd", "banded")
    assert str(Concept("dtd", "banded")) == "dtd::banded"
    assert Concept.parse("fscoco") == Concept("fscoco", None)


def test_batch_shares_follow_the_mixture_and_give_missing_sources_away():
    mixture = Mixture(pretraining=0.33, update=0.34, buffer=0.33)
    assert batch_shares(100, mixture, True, True) == {"pretraining": 33, "update": 34, "buffer": 33}
    shares = batch_shares(100, mixture, True, False)  # first task: no buffer yet
    assert shares["buffer"] == 0 and sum(shares.values()) == 100 and shares["pretraining"] == 49


def test_epoch_sampler_visits_every_index_once_per_pass():
    sampler = EpochSampler(10, torch.Generator().manual_seed(0))
    first, second = sampler.take(10), sampler.take(10)
    assert sorted(first.tolist()) == list(range(10)) and sorted(second.tolist()) == list(range(10))
    assert len(sampler.take(25)) == 25


def sample_set(value: int, n: int) -> TensorSampleSet:
    images = torch.full((n, 3, 4, 4), value, dtype=torch.uint8)
    return TensorSampleSet(images, torch.zeros(n, dtype=torch.long), [[f"s{value}-{i}"] for i in range(n)])


def test_mixed_batches_draw_fixed_shares_from_each_source_deterministically():
    pools = Pools(
        pretraining=Pool([Segment(sample_set(1, 20), torch.arange(20))]),
        update=Pool([Segment(sample_set(2, 5), torch.arange(5)), Segment(sample_set(3, 5), torch.tensor([0, 1]))]),
        buffer=Pool([Segment(sample_set(4, 8), torch.arange(8))]),
    )
    mixture = Mixture(pretraining=0.25, update=0.5, buffer=0.25)

    def draw(seed: int):
        batches = MixedBatches(pools, 8, mixture, torch.Generator().manual_seed(seed))
        return [batches.next_batch() for _ in range(3)]

    first = draw(0)
    images, captions = first[0]
    assert images.shape == (8, 3, 4, 4)
    values = images[:, 0, 0, 0].tolist()
    assert values[:2] == [1, 1] and set(values[2:6]) <= {2, 3} and values[6:] == [4, 4]
    assert all(c.startswith(f"s{v}-") for c, v in zip(captions, values, strict=True))
    assert not any(c in {"s3-2", "s3-3", "s3-4"} for _, caps in first for c in caps)  # only the segment's indices
    again = draw(0)
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(first, again, strict=True))


def test_dataset_concepts_and_train_indices():
    train = TensorSampleSet(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 2, 2, 0]), [["a"]] * 4)
    dataset = ImageTextDataset("d", "adaptation", "classification", ["x", "y", "z"], ["a {}"], train=train)
    assert dataset.concepts() == [Concept("d", "x"), Concept("d", "z")]  # y has no training sample
    assert dataset.train_indices([Concept("d", "z"), Concept("other", "x")]).tolist() == [1, 2]
    with pytest.raises(ValueError, match="templates"):
        ImageTextDataset("d", "adaptation", "classification", ["x"], ["no placeholder"])


def test_aggregate_and_summary_follow_the_definitions():
    scores = {"a1": 0.2, "a2": 0.4, "z1": 0.9}
    values = aggregate(scores, ["a1", "a2"], ["z1"])
    assert values["A_KA"] == pytest.approx(0.3) and values["A_ZS"] == pytest.approx(0.9)
    assert values["GM"] == pytest.approx(math.sqrt(0.27))
    records = [
        {"task": -1, "step": 0, "samples_seen": 0, "A_KA": 0.1, "A_ZS": 0.9, "GM": 0.3, "scores": {}},
        {"task": 0, "step": 5, "samples_seen": 50, "A_KA": 0.3, "A_ZS": 0.8, "GM": 0.49, "scores": {}},
        {"task": 1, "step": 10, "samples_seen": 100, "A_KA": 0.5, "A_ZS": 0.7, "GM": 0.59, "scores": {"a": 1}},
    ]
    summary = summarise(records)
    assert {key: summary["A_KA"][key] for key in ("base", "final", "mean", "change")} == {
        "base": 0.1,
        "final": 0.5,
        "mean": pytest.approx(0.4),
        "change": pytest.approx(0.4),
    }
    assert summary["tasks_done"] == 2 and summary["final_scores"] == {"a": 1}


def test_weight_store_round_trips_and_never_aliases(tmp_path):
    store = WeightStore(tmp_path / "w")
    shared = torch.arange(6.0)
    weights = {"a": shared, "b": shared, "c": torch.tensor([1, 2], dtype=torch.int64)}
    store.save("task-0", weights)
    loaded = store.load("task-0")
    assert torch.equal(loaded["a"], shared) and torch.equal(loaded["b"], shared) and loaded["c"].dtype == torch.int64
    assert store.keys() == ["task-0"] and "task-0" in store
    with pytest.raises(KeyError):
        store.load("task-1")
    with pytest.raises(ValueError):
        store.save("../escape", weights)


def test_the_schedule_is_dry_run_before_training():
    from fomo_host.engine.preflight import check_schedule
    from fomo_host.errors import FomoError

    check_schedule("flat", lambda step, steps, task, tasks: 1.0, 5, 3)

    def too_long(step, steps, task, tasks):
        if steps < 10:
            raise FomoError("warmup (12 steps) exceed the 5 steps of a task")
        return 1.0

    with pytest.raises(FomoError, match="exceed the 5 steps"):
        check_schedule("rsqrt", too_long, 5, 3)
    with pytest.raises(FomoError, match=r"scheduler 'broken' fails at task 2 step 1 of 5: ZeroDivisionError"):
        check_schedule("broken", lambda step, steps, task, tasks: 1 / (1 - task), 5, 3)
    with pytest.raises(FomoError, match=r"gives the learning-rate factor nan at task 1 step 3"):
        check_schedule("nan", lambda step, steps, task, tasks: float("nan") if step == 2 else 1.0, 5, 3)
    with pytest.raises(FomoError, match=r"gives the learning-rate factor -0.5"):
        check_schedule("negative", lambda step, steps, task, tasks: -0.5, 5, 3)


def test_two_metrics_with_the_same_value_name_keep_both_values_and_the_first_gives_the_score():
    import contextlib
    import types

    from fomo_host.engine.evaluation import EvaluationSet, build_metrics, evaluate

    class Constant:
        primary = "top1"

        def __init__(self, value: float) -> None:
            self.value = value

        def applies_to(self, dataset) -> bool:
            return True

        def __call__(self, bundle, dataset, context) -> dict[str, float]:
            return {"top1": self.value}

    def resolved(name: str, value: float):
        return types.SimpleNamespace(name=name, build=lambda: Constant(value))

    metrics = build_metrics([resolved("a", 0.25), resolved("b", 0.75), resolved("b", 0.5)])
    assert [label for label, _ in metrics] == ["a", "b.1", "b.2"]
    dataset = types.SimpleNamespace(name="letters", test=[0] * 4)
    runtime = types.SimpleNamespace(device=torch.device("cpu"), autocast=contextlib.nullcontext, world_size=1, rank=0, distributed=False)
    bundle = types.SimpleNamespace(model=torch.nn.Identity())
    values, scores = evaluate(runtime, bundle, [EvaluationSet(dataset, metrics)], 8, 1.0, torch.Generator())
    assert values == {"letters": {"a/top1": 0.25, "b.1/top1": 0.75, "b.2/top1": 0.5}}
    assert scores == {"letters": 0.25}
