"""Merge schedules: the weights they train from and deploy, their params, resume and on-disk history."""

import pytest
import torch
from fomo_merging.operators import ties
from fomo_merging.params import AllMergeParams, FinetunedMergeParams, GeneralMergeParams, RunningMergeParams
from fomo_merging.schedules import EMAMerge, FinetunedMerge, GeneralMerge, NoMerge, OfflineMerge, ZeroShotMerge
from pydantic import ValidationError

from fomo_host.api import MergeInputs, ProcessInfo, WeightStore


def op(name, **params):
    """A merge operator chosen with params, as a spec writes it."""
    return {"name": name, "params": params}


def sd(*values):
    return {"w": torch.tensor(values), "n": torch.tensor([len(values)])}


def run_tasks(merger, store, base, finetuned_per_task, process=ProcessInfo()):
    """Feed each task's fine-tuned weights through the merger; returns the decisions."""
    decisions = []
    for task, finetuned in enumerate(finetuned_per_task):
        decisions.append(merger.after_task(MergeInputs(task, len(finetuned_per_task), base, finetuned, store, process)))
    return decisions


@pytest.fixture
def store(tmp_path):
    return WeightStore(tmp_path / "weights")


def values(state):
    return state["w"].tolist()


def test_none_continues_and_deploys_the_finetuned_model(store):
    from fomo_host.api import NoParams

    decision = NoMerge(NoParams()).after_task(MergeInputs(0, 2, sd(0.0), sd(1.0), store))
    assert decision.train_from is None and decision.deploy is None


def test_ema_merge(store):
    base = sd(0.0, 0.0)
    merger = EMAMerge(RunningMergeParams(operator="interpolation", weight=0.3))
    first, second = run_tasks(merger, store, base, [sd(1.0, 2.0), sd(2.0, 0.0)])
    # m_0 = 0.3 ft_0 + 0.7 theta_0; m_1 = 0.3 ft_1 + 0.7 m_0
    assert values(first.deploy) == pytest.approx([0.3, 0.6])
    assert values(second.deploy) == pytest.approx([0.6 + 0.21, 0.42])
    assert values(second.train_from) == values(second.deploy)
    assert values(base) == [0.0, 0.0]


def test_zero_shot_merge_trains_from_base_and_deploys_the_running_merge(store):
    base = sd(1.0, 1.0)
    merger = ZeroShotMerge(RunningMergeParams())
    first, second = run_tasks(merger, store, base, [sd(2.0, 3.0), sd(3.0, 1.0)])
    assert values(first.train_from) == [1.0, 1.0] and values(second.train_from) == [1.0, 1.0]
    assert values(first.deploy) == pytest.approx([1.5, 2.0])  # 0.5 ft_0 + 0.5 theta_0
    assert values(second.deploy) == pytest.approx([2.25, 1.5])  # 0.5 ft_1 + 0.5 m_0


def test_finetuned_merge_is_wise_ft_after_every_task(store):
    base = sd(1.0, 1.0)
    merger = FinetunedMerge(FinetunedMergeParams(weight=0.4))
    first, second = run_tasks(merger, store, base, [sd(2.0, 3.0), sd(6.0, 1.0)])
    assert values(first.deploy) == pytest.approx([1.4, 1.8])
    assert values(second.deploy) == pytest.approx([3.0, 1.0])  # 0.4 ft_1 + 0.6 theta_0, not the previous merge
    assert values(second.train_from) == values(second.deploy)
    assert store.keys() == []  # needs no history


def test_offline_task_arithmetic(store):
    base = sd(1.0, 1.0)
    merger = OfflineMerge(AllMergeParams(operator=op("task-arithmetic", scaling=0.5)))
    first, second = run_tasks(merger, store, base, [sd(2.0, 3.0), sd(0.0, 1.0)])
    assert values(first.deploy) == pytest.approx([1.5, 2.0])
    assert values(second.deploy) == pytest.approx([1.0, 2.0])  # 1 + 0.5 ([1, 2] + [-1, 0])
    assert values(second.train_from) == [1.0, 1.0]
    assert store.keys() == ["merge-task-0000", "merge-task-0001"]


def test_offline_ties_equals_one_ties_merge_of_every_checkpoint(store):
    base = {"a": torch.ones(4), "b": torch.ones(2)}
    taus = [[3.0, -1.0, 0.5, -2.0, 0.1, 2.5], [-4.0, 2.0, 0.2, 1.0, 0.3, 3.0], [1.5, -3.0, -0.4, 5.0, -0.2, -0.6]]
    models = []
    for tau in taus:
        full = torch.ones(6) + torch.tensor(tau)
        models.append({"a": full[:4].clone(), "b": full[4:].clone()})
    merger = OfflineMerge(AllMergeParams(operator=op("ties", density=0.5)))
    decisions = run_tasks(merger, store, base, models)
    last = decisions[-1].deploy
    # per-tensor TIES of the three (worked out in test_operators.py::test_ties_trims_per_tensor_by_default)
    assert torch.cat([last["a"], last["b"]]).tolist() == pytest.approx([-3.0, -2.0, 1.0, 6.0, 1.0, 3.75])
    expected = ties(base, models[:2], density=0.5)
    assert all(torch.equal(decisions[1].deploy[k], expected[k]) for k in expected)


def test_general_combinations(store):
    base = sd(0.0)
    latest_all = GeneralMerge(GeneralMergeParams(init="latest", deploy="all"))
    first, second = run_tasks(latest_all, store, base, [sd(2.0), sd(4.0)])
    assert second.train_from is None and values(second.deploy) == pytest.approx([3.0])
    running_latest = GeneralMerge(GeneralMergeParams(init="running", deploy="latest", weight=0.25))
    decisions = run_tasks(running_latest, WeightStore(store.root / "other"), base, [sd(4.0), sd(8.0)])
    assert decisions[1].deploy is None and values(decisions[1].train_from) == pytest.approx([0.25 * 8 + 0.75 * 1.0])


def test_integer_tensors_come_from_the_latest_model(store):
    merger = EMAMerge(RunningMergeParams())
    decision = run_tasks(merger, store, sd(0.0, 0.0), [{"w": torch.tensor([1.0, 1.0]), "n": torch.tensor([9])}])[0]
    assert decision.deploy["n"].tolist() == [9]


@pytest.mark.parametrize(
    ("factory", "params"),
    [
        (EMAMerge, RunningMergeParams(operator="slerp", weight=0.3)),
        (ZeroShotMerge, RunningMergeParams(operator=op("dare", drop=0.3, combine="ties"))),
        (FinetunedMerge, FinetunedMergeParams(operator=op("ties", density=0.5))),
        (OfflineMerge, AllMergeParams(operator=op("breadcrumbs", drop_largest=0.1, drop_smallest=0.2))),
        (GeneralMerge, GeneralMergeParams(init="all", deploy="running", operator="magmax", lines={"alpha": 0.5, "beta": 0.5})),
    ],
)
def test_base_and_finetuned_are_never_modified(store, factory, params):
    generator = torch.Generator().manual_seed(1)
    base = {
        "transformer.resblocks.0.w": torch.randn(6, generator=generator),
        "transformer.resblocks.1.w": torch.randn(6, generator=generator),
    }
    base_copy = {k: v.clone() for k, v in base.items()}
    merger = factory(params)
    for task in range(3):
        finetuned = {k: v + torch.randn(6, generator=generator) for k, v in base.items()}
        finetuned_copy = {k: v.clone() for k, v in finetuned.items()}
        decision = merger.after_task(MergeInputs(task, 3, base, finetuned, store))
        assert all(torch.equal(finetuned[k], finetuned_copy[k]) for k in finetuned)
        for weights in (decision.train_from, decision.deploy):
            if weights is not None and weights is not base:
                assert all(weights[k].data_ptr() not in (base[k].data_ptr(), finetuned[k].data_ptr()) for k in base)
    assert all(torch.equal(base[k], base_copy[k]) for k in base)


@pytest.mark.parametrize(
    "factory, params", [(EMAMerge, RunningMergeParams(operator="dare")), (OfflineMerge, AllMergeParams(operator="ties"))]
)
def test_state_round_trip_resumes_exactly(tmp_path, factory, params):
    generator = torch.Generator().manual_seed(2)
    base = {"w": torch.randn(50, generator=generator)}
    stream = [{"w": base["w"] + torch.randn(50, generator=generator)} for _ in range(4)]
    store = WeightStore(tmp_path / "uninterrupted")
    uninterrupted = run_tasks(factory(params), store, base, stream)

    # interrupted after task 1; task 2 had already merged (and written to the store) when the process died
    resumed_store = WeightStore(tmp_path / "resumed")
    first = factory(params)
    run_tasks(first, resumed_store, base, stream[:2])
    state = first.state_dict()
    first.after_task(MergeInputs(2, 4, base, stream[2], resumed_store))
    assert all(isinstance(v, str | list | type(None)) for v in state.values())  # small: keys only

    second = factory(params)
    second.load_state_dict(state)
    for task in (2, 3):
        decision = second.after_task(MergeInputs(task, 4, base, stream[task], resumed_store))
        assert torch.equal(decision.deploy["w"], uninterrupted[task].deploy["w"])


def test_running_merges_keep_only_two_files(store):
    merger = EMAMerge(RunningMergeParams())
    run_tasks(merger, store, sd(0.0), [sd(float(t)) for t in range(6)])
    assert store.keys() == ["merge-running-0004", "merge-running-0005"]


@pytest.mark.parametrize(
    ("params_class", "raw", "message"),
    [
        (RunningMergeParams, {"operator": "ties", "weight": 0.3}, "weight does not apply to operator 'ties'"),
        (RunningMergeParams, {"operator": op("interpolation", scaling=0.3)}, r"operator\.params\.scaling"),
        (RunningMergeParams, {"operator": op("task-arithmetic", density=0.3)}, r"operator\.params\.density"),
        (RunningMergeParams, {"operator": "ties", "density": 0.3}, "density"),  # operator settings live in operator.params
        (RunningMergeParams, {"operator": "tie"}, "unknown merge operator 'tie'; available: breadcrumbs"),
        (AllMergeParams, {"operator": "slerp"}, "merges at most 2 models"),
        (AllMergeParams, {"weight": 0.5}, "Extra inputs are not permitted"),
        (FinetunedMergeParams, {"operator": "model-stock"}, "merges fine-tuned models only"),
        (GeneralMergeParams, {"init": "base", "deploy": "all", "weight": 0.2}, "weight does not apply here"),
        (GeneralMergeParams, {"init": "all", "deploy": "latest", "operator": "slerp"}, "merges at most 2 models"),
        (AllMergeParams, {"operator": op("dare", trim="global")}, r"operator\.params\.trim"),
        (AllMergeParams, {"operator": op("breadcrumbs", drop_largest=0.5, drop_smallest=0.5)}, "drops everything"),
        (AllMergeParams, {"operator": op("ties", density=0)}, "greater than 0"),
        (AllMergeParams, {"operator": op("dare", drop=1.0)}, "less than 1"),
        (AllMergeParams, {"lines": {"alpha": 0.5}}, "beta"),
    ],
)
def test_params_reject_what_would_be_ignored(params_class, raw, message):
    with pytest.raises(ValidationError, match=message):
        params_class.model_validate(raw)


def test_params_accept_lambda_by_its_name():
    params = AllMergeParams.model_validate({"operator": {"name": "ties", "params": {"lambda": 0.8, "density": 0.1}}})
    assert params.operator.params.scaling == 0.8


def test_each_process_writes_its_own_files(tmp_path):
    base = sd(0.0, 0.0)
    stream = [sd(1.0, 2.0), sd(3.0, 1.0)]
    params = GeneralMergeParams(init="running", deploy="all", operator="task-arithmetic")
    main_store = WeightStore(tmp_path / "weights")
    on_main = run_tasks(GeneralMerge(params), main_store, base, stream)
    on_second = run_tasks(GeneralMerge(params), main_store, base, stream, ProcessInfo(rank=1, world_size=2))
    assert all(torch.equal(a.deploy["w"], b.deploy["w"]) for a, b in zip(on_main, on_second, strict=True))
    assert set(main_store.keys()) == {
        *(f"merge-{kind}-{task:04d}{suffix}" for kind in ("running", "task") for task in (0, 1) for suffix in ("", "-rank1"))
    }


def test_model_stock_merges_every_checkpoint():
    assert AllMergeParams.model_validate({"operator": "model-stock"}).operator.name == "model-stock"
    assert GeneralMergeParams.model_validate({"init": "all", "deploy": "all", "operator": "model-stock"}).deploy == "all"
