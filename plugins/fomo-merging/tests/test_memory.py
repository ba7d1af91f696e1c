"""The merge history lives on disk and is read one checkpoint at a time: memory does not grow with the tasks."""

import gc
import warnings
import weakref

import pytest
import torch
from fomo_merging.params import AllMergeParams, GeneralMergeParams
from fomo_merging.schedules import GeneralMerge, OfflineMerge

from fomo_host.api import MergeInputs, WeightStore


class TrackingStore(WeightStore):
    """A weight store that counts how many loaded checkpoints are alive at once."""

    def __init__(self, root):
        super().__init__(root)
        self.alive = 0
        self.most_alive = 0
        self.loads = 0

    def load(self, key, device="cpu"):
        weights = super().load(key, device)
        self.loads += 1
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)
        # every tensor of a loaded checkpoint dies with it unless someone keeps it
        weakref.finalize(next(iter(weights.values())), self._released)
        return weights

    def _released(self):
        self.alive -= 1


def live_tensor_bytes():
    gc.collect()
    with warnings.catch_warnings():
        # isinstance() on every live object touches deprecated torch module attributes
        warnings.simplefilter("ignore")
        return sum(obj.untyped_storage().nbytes() for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def tensors_held_by(value, seen=None):
    """Tensors reachable from an object's attributes (containers included)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return 1
    if isinstance(value, dict):
        return sum(tensors_held_by(v, seen) for v in value.values())
    if isinstance(value, list | tuple | set):
        return sum(tensors_held_by(v, seen) for v in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sum(tensors_held_by(v, seen) for v in vars(value).values())
    return 0


def test_twenty_tasks_on_the_tiny_model_keep_memory_flat(tmp_path):
    models = pytest.importorskip("fomo_openclip.models")
    torch.manual_seed(0)
    bundle = models.build_tiny_clip(models.TinyCLIPParams(), None)
    base = {key: tensor.detach().clone() for key, tensor in bundle.model.state_dict().items()}
    del bundle
    checkpoint_bytes = sum(t.untyped_storage().nbytes() for t in base.values())
    store = TrackingStore(tmp_path / "weights")
    # trains from the running merge and deploys one merge of every checkpoint: both history kinds
    merger = GeneralMerge(GeneralMergeParams(init="running", deploy="all", operator={"name": "task-arithmetic", "params": {"lambda": 0.5}}))
    live = {}
    for task in range(20):
        finetuned = {k: v + 0.01 * torch.randn_like(v) for k, v in base.items()}
        decision = merger.after_task(MergeInputs(task, 20, base, finetuned, store))
        assert decision.deploy is not None and decision.train_from is not None
        del decision, finetuned
        if task in (1, 10, 19):
            live[task] = live_tensor_bytes()
        assert tensors_held_by(merger) == 0
    # the deployed merge read all earlier checkpoints (19 at the last task), never more than two at once
    assert store.loads >= 19 and store.most_alive <= 2
    # live tensors after task 20 are those after task 2: with the history in memory they would hold 18 more checkpoints
    assert max(live[10], live[19]) - live[1] < 0.5 * checkpoint_bytes
    assert len(store.keys()) == 20 + 2  # every task checkpoint, and the last two running merges


def test_ties_reads_its_history_one_checkpoint_at_a_time(tmp_path):
    generator = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(2000, generator=generator), "v": torch.randn(30, 30, generator=generator)}
    store = TrackingStore(tmp_path / "weights")
    merger = OfflineMerge(AllMergeParams(operator={"name": "ties", "params": {"density": 0.3}}))
    for task in range(20):
        finetuned = {k: v + torch.randn(v.shape, generator=generator) for k, v in base.items()}
        merger.after_task(MergeInputs(task, 20, base, finetuned, store))
    # two passes over the 19 stored checkpoints at the last task, sum over all tasks: 2 * (0 + 1 + ... + 19)
    assert store.loads == 2 * sum(range(20))
    assert store.most_alive <= 2
