"""A merger inside a real 2-task run of the tiny model on the synthetic data."""

import pytest
import torch

import fomo_host
from fomo_host.api import WeightStore, load_weights
from fomo_host.testing import read_checkpoint

pytest.importorskip("fomo_openclip")
pytest.importorskip("fomo_synthetic")

SPEC = {
    "run": {"name": "merge-e2e", "seed": 0, "batch_size": 32},
    "model": {"name": "tiny-clip"},
    "data": {
        "sources": [
            {
                "name": "synthetic",
                "params": {
                    "pool_train_per_class": 6,
                    "train_per_class": 6,
                    "test_per_class": 3,
                    "retrieval_train": 24,
                    "retrieval_test": 12,
                    "adaptation": ["letters", "arrows"],
                    "zero_shot": ["shapes-outline"],
                },
            }
        ],
        "num_tasks": 2,
    },
    "budget": {"steps_per_task": 3},
    "optimizer": {"lr": 1e-3},
    "merger": {"name": "general", "params": {"init": "running", "deploy": "all", "operator": "interpolation", "weight": 0.5}},
}


@pytest.mark.parametrize("method", ["finetune", "lora"])
def test_general_merge_in_a_two_task_run(tmp_path, method):
    if method == "lora":
        pytest.importorskip("fomo_peft")
    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    records = fomo_host.run(SPEC, overrides={"method.name": method}, output=run_dir, quiet=True).records
    assert [r["task"] for r in records] == [-1, 0, 1]
    store = WeightStore(run_dir / "weights")
    assert {"merge-task-0000", "merge-task-0001", "merge-running-0000", "merge-running-0001"} <= set(store.keys())
    base = load_weights(run_dir / "weights" / "base.safetensors")
    first, second = store.load("merge-task-0000"), store.load("merge-task-0001")
    running_0, running_1 = store.load("merge-running-0000"), store.load("merge-running-0001")
    for key, tensor in base.items():
        if not tensor.is_floating_point():
            continue
        # m_0 = 0.5 ft_0 + 0.5 theta_0; m_1 = 0.5 ft_1 + 0.5 m_0
        torch.testing.assert_close(running_0[key], 0.5 * first[key] + 0.5 * tensor)
        torch.testing.assert_close(running_1[key], 0.5 * second[key] + 0.5 * running_0[key])
    # merges see full weights under the base model's names, whatever the method wraps
    assert set(first) == set(running_1) == set(base)
    changed = [key for key in base if not torch.equal(first[key], base[key])]
    assert changed
    checkpoint = read_checkpoint(run_dir)
    if method == "finetune":
        # the model the next task would train from is the running merge
        assert all(torch.equal(checkpoint.model[key], running_1[key]) for key in running_1)
    assert checkpoint.merger == {"running": "merge-running-0001", "history": ["merge-task-0000", "merge-task-0001"]}
