"""The conformance suites check what they say, with nothing but the host: their toy components load on their own
(in the test process and, through FOMO_PLUGIN_MODULES, in the processes a run starts), the toy CLIP has open_clip's
layout, and the merger suite catches a second process writing the main process's files."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from fomo_host.components import MergeDecision, MergeInputs, Merger
from fomo_host.plugins import load_plugins
from fomo_host.testing import MergerConformance
from fomo_host.testing.toy_plugin import MODEL, RECORDER, TOY_MODULE, TOY_PLUGINS, processes_seen, toy_environment
from fomo_host.testing.transformer_clip import TransformerCLIP


def test_the_toy_components_load_from_the_suites_and_from_the_environment(monkeypatch):
    given = load_plugins(extra=TOY_PLUGINS, use_entry_points=False)
    assert given.problems == [] and given.registry.get("model", MODEL).provider.version == "local"
    monkeypatch.setenv(*next(iter(toy_environment().items())))
    named = load_plugins(extra=TOY_PLUGINS, use_entry_points=False)  # named twice: loaded once
    assert named.problems == [] and named.registry.get("merger", RECORDER).provider.distribution == TOY_MODULE
    monkeypatch.setenv("FOMO_PLUGIN_MODULES", "no_such_module_here")
    broken = load_plugins(use_entry_points=False)
    assert len(broken.problems) == 1 and "no_such_module_here" in broken.problems[0] and "ModuleNotFoundError" in broken.problems[0]


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is None, reason="compares with open_clip's CLIP")
def test_the_toy_clip_has_open_clips_layout():
    from open_clip.model import CLIP

    toy = TransformerCLIP(layers=2)
    vision = {"image_size": 16, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16, "mlp_ratio": 2.0}
    text = {"context_length": 8, "vocab_size": 1024, "width": 32, "heads": 2, "layers": 2, "mlp_ratio": 2.0}
    real = CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text)
    assert {name: tuple(t.shape) for name, t in toy.state_dict().items()} == {name: tuple(t.shape) for name, t in real.state_dict().items()}
    real_modules = dict(real.named_modules())
    for name, module in toy.named_modules():  # the layers methods look for, by name and by torch type
        if type(module).__module__.startswith("torch.nn") and not isinstance(module, torch.nn.Sequential):
            assert isinstance(real_modules.get(name), type(module)), f"{name}: {type(module).__name__}"


def test_processes_seen_reads_the_recorders_marks(tmp_path):
    for name in ("task-0.rank-0-of-2", "task-0.rank-1-of-2", "task-1.rank-0-of-2"):
        (tmp_path / name).touch()
    assert processes_seen(tmp_path) == {0: {(0, 2), (1, 2)}, 1: {(0, 2)}}


class RewritesTheMainFiles(Merger):
    """Every process saves the same key: the second process rewrites the main process's file with the same bytes."""

    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        inputs.store.save("merged", inputs.base)
        return MergeDecision()


class KeepsToItsOwnFiles(Merger):
    def after_task(self, inputs: MergeInputs) -> MergeDecision:
        suffix = "" if inputs.process.is_main else f"-rank{inputs.process.rank}"
        inputs.store.save(f"merged{suffix}", inputs.base)
        return MergeDecision()


class Suite(MergerConformance):
    merger_name = "not-registered"
    num_tasks = 2


@pytest.mark.parametrize(("merger", "caught"), [(RewritesTheMainFiles, True), (KeepsToItsOwnFiles, False)])
def test_the_merger_suite_catches_a_second_process_rewriting_the_main_files(merger, caught, tmp_path, monkeypatch):
    suite = Suite()
    monkeypatch.setattr(suite, "merger", merger)
    check = suite.test_a_second_process_decides_the_same_and_writes_none_of_the_main_process_files
    if caught:
        with pytest.raises(AssertionError, match=r"the second process wrote .* files the main process writes: \['run/weights/merged"):
            check(tmp_path)
    else:
        check(tmp_path)
