"""Every optimizer of the plugin passes the optimizer conformance suite (a run changes weights, its state round-trips
through a checkpoint, an interrupted run resumes to the uninterrupted one's results)."""

from __future__ import annotations

from pathlib import Path

import torch

from fomo_host.api import load_weights
from fomo_host.testing import OptimizerConformance, read_checkpoint


class TestAdamW(OptimizerConformance):
    optimizer_name = "adamw"
    optimizer_params = {"betas": [0.9, 0.98], "eps": 1e-6}
    invalid_optimizer_params = {"betas": [1.0, 0.98]}


class TestAdamW8bit(OptimizerConformance):
    optimizer_name = "adamw8bit"
    # the tiny model's matrices are 4,096 to 55,296 elements: most get 8-bit state at this threshold
    optimizer_params = {"min_8bit_size": 4096}
    invalid_optimizer_params = {"min_8bit_size": 0}


class TestGaLore(OptimizerConformance):
    optimizer_name = "galore"
    # the tiny model's block matrices are 64 to 288 wide; rank 8 projects all of them, a gap of 2 recomputes the
    # projection inside every task (and across the resumed step)
    optimizer_params = {"rank": 8, "update_proj_gap": 2, "scale": 0.5}
    invalid_optimizer_params = {"proj_type": "diagonal"}


class TestScheduleFreeAdamW(OptimizerConformance):
    optimizer_name = "adamw-schedulefree"
    optimizer_params = {"warmup_steps": 2}
    invalid_optimizer_params = {"betas": [0.9, -0.1]}

    def test_the_checkpoint_between_tasks_holds_the_evaluated_weights(self, uninterrupted: Path, cache_dir: Path) -> None:
        checkpoint = read_checkpoint(uninterrupted)
        assert checkpoint.next_task == self.num_tasks
        # the state was saved in evaluation form
        assert [group["train_mode"] for group in checkpoint.optimizer["param_groups"]] == [False] * len(
            checkpoint.optimizer["param_groups"]
        )
        # what the last task exported (and the run evaluated: no merge) is what the checkpoint keeps
        finetuned = load_weights(uninterrupted / "weights" / f"conformance-finetuned-{self.num_tasks - 1}.safetensors")
        assert all(torch.equal(finetuned[name], checkpoint.model[name]) for name in finetuned)
        # and it is the averaged iterate x, not the training point y: switching the restored optimizer to its
        # training form moves the weights
        model, optimizer, optimizers = self.restored_optimizer(checkpoint, cache_dir)
        before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        optimizers.train_mode(optimizer)
        moved = [name for name, tensor in model.state_dict().items() if not torch.equal(tensor, before[name])]
        assert moved, "the training form equals the evaluation form: the switch did nothing"
        # switching to training form twice changes nothing more (a resumed run switches once more)
        after = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        optimizers.train_mode(optimizer)
        assert all(torch.equal(tensor, after[name]) for name, tensor in model.state_dict().items())
