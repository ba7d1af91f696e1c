"""Exporting a run's deployed weights: a LoRA run with a merger, exported, loaded by plain open_clip, scores reproduced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fomo_host.cli import main
from fomo_host.components import ModelBundle
from fomo_host.deployed import DeployedWeights, deployed_path, kept_tasks
from fomo_host.export import export_run, read_exported
from fomo_host.results import read_records
from fomo_host.spec_loading import build_spec, load_spec
from fomo_host.weights import load_weights, read_metadata

pytest.importorskip("fomo_peft")
pytest.importorskip("fomo_merging")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, small_spec_text: str) -> Path:
    """LoRA with an EMA merge over two tiny tasks, keeping every task's deployed weights."""
    folder = tmp_path_factory.mktemp("lora-run")
    spec = folder / "spec.toml"
    spec.write_text(small_spec_text.format(num_tasks=2, steps=4), encoding="utf-8")
    run_dir = folder / "run"
    overrides = ["method.name=lora", "merger.name=ema", "run.keep_deployed=true"]
    assert main(["run", str(spec), "--output", str(run_dir), "--quiet", *[a for o in overrides for a in ("--set", o)]]) == 0
    return run_dir


@pytest.mark.slow
def test_an_exported_lora_merge_run_loads_into_plain_open_clip_and_reproduces_its_scores(lora_run, tmp_path, capsys):
    import open_clip

    from fomo_host.engine.evaluation import build_metrics, evaluate, plan_evaluation
    from fomo_host.engine.run import prepare
    from fomo_host.plugins import load_plugins
    from fomo_host.progress import Reporter

    capsys.readouterr()
    out = tmp_path / "export"
    assert main(["export", str(lora_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the weights deployed after task 2/2" in printed and f"create_model_and_transforms('local-dir:{out}')" in printed

    # a fresh open_clip model, built by open_clip alone from the exported folder
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")
    base = load_weights(lora_run / "weights" / "base.safetensors")
    exported = load_weights(out / "open_clip_model.safetensors")
    assert set(exported) == set(base) == set(model.state_dict())  # the base model's names: the adapters are folded in
    assert not any("lora" in name or "parametrizations" in name for name in exported)

    # evaluated on the run's evaluation sets, it scores what the run recorded after its last task
    host = load_plugins()
    spec = load_spec(lora_run / "spec.toml", registry=host.registry)
    setup = prepare(host, spec, Reporter(enabled=False), warm=False)
    bundle = ModelBundle(model, setup.bundle.tokenizer, setup.bundle.image_size, setup.bundle.image_mean, setup.bundle.image_std)
    plan = plan_evaluation(setup.data.adaptation + setup.data.zero_shot, build_metrics(setup.components.metrics))
    _, scores = evaluate(setup.runtime, bundle, plan, spec.evaluation.batch_size, 1.0, torch.Generator())
    final = read_records(lora_run)[-1]
    assert final["task"] == 1 and final["subset_fraction"] == 1.0
    assert scores == final["scores"]

    # fomo-host evaluate does the same from the file, and shows the recorded scores beside its own
    assert main(["evaluate", str(out), "--spec", str(lora_run / "spec.toml"), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scores"] == final["scores"] and result["GM"] == pytest.approx(final["GM"])
    assert result["recorded"]["scores"] == final["scores"]


@pytest.mark.slow
def test_a_single_file_export_carries_the_runs_metadata_and_any_kept_task(lora_run, tmp_path, capsys):
    assert kept_tasks(lora_run) == [0, 1, 2]  # run.keep_deployed = true
    target = tmp_path / "after-task-1.safetensors"
    assert main(["export", str(lora_run), "--task", "1", "--out", str(target)]) == 0
    assert "tiny-clip is no built-in open_clip architecture" in capsys.readouterr().out
    meta = read_metadata(target)
    assert meta["task"] == "1" and meta["num_tasks"] == "2" and meta["method"] == "lora" and meta["merger"] == "ema"
    assert meta["architecture"] == "tiny-clip" and json.loads(meta["open_clip_config"])["embed_dim"] == 64
    assert meta["spec_fingerprint"] == load_spec(lora_run / "spec.toml").fingerprint()
    first = read_records(lora_run)[1]
    assert json.loads(meta["recorded"]) == {k: first[k] for k in ("scores", "A_KA", "A_ZS", "GM", "subset_fraction")}
    torch.testing.assert_close(read_exported(target).weights, load_weights(deployed_path(lora_run, 1)), rtol=0, atol=0)

    assert main(["evaluate", str(target), "--spec", str(lora_run / "spec.toml"), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "recorded" in table and "share of each test set" in table  # task 1 was evaluated on a subset

    assert main(["export", str(lora_run), "--task", "1", "--out", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["export", str(lora_run), "--task", "3", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "no deployed weights of task 3; kept: 0 (base), 1, 2" in capsys.readouterr().err


@pytest.mark.slow
def test_a_built_in_architecture_exports_to_one_file_open_clip_loads_by_name(tmp_path):
    """The single-file route, without training: deployed weights of ViT-S-32 as a run writes them, loaded by name."""
    import open_clip

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-32")
    config = open_clip.get_model_config("ViT-S-32")
    info = {"open_clip_architecture": "ViT-S-32", "open_clip_config": config}
    bundle = ModelBundle(model, lambda texts: torch.zeros(1), 224, (0.5,) * 3, (0.5,) * 3, "ViT-S-32", info)
    spec = build_spec({"model": {"name": "open-clip"}, "data": {"sources": [{"name": "x"}]}, "budget": {"steps_per_task": 1}})
    run_dir = tmp_path / "run"
    DeployedWeights(run_dir, spec, bundle, num_tasks=1).save(model.state_dict(), 1)
    result = export_run(run_dir, tmp_path / "vit-s-32.safetensors")
    assert result.load_hint == f"open_clip.create_model('ViT-S-32', pretrained={str(tmp_path / 'vit-s-32.safetensors')!r})"
    loaded = open_clip.create_model("ViT-S-32", pretrained=str(result.weights))
    assert all(torch.equal(loaded.state_dict()[name], tensor) for name, tensor in model.state_dict().items())


def test_without_keep_deployed_only_the_last_tasks_weights_stay(tmp_path):
    spec = build_spec({"model": {"name": "m"}, "data": {"sources": [{"name": "x"}]}, "budget": {"steps_per_task": 1}})
    bundle = ModelBundle(torch.nn.Linear(2, 2), lambda texts: torch.zeros(1), 8, (0.5,) * 3, (0.5,) * 3, "m")
    deployed = DeployedWeights(tmp_path, spec, bundle, num_tasks=3)
    weights = {"weight": torch.ones(2, 2)}
    deployed.save(weights, 0)
    for task in (1, 2, 3):
        deployed.save(weights, task)
        assert kept_tasks(tmp_path) == [0, task]
    kept = DeployedWeights(tmp_path, build_spec(spec.model_dump(mode="json"), ["run.keep_deployed=true"]), bundle, num_tasks=3)
    kept.save(weights, 1)
    kept.save(weights, 2)
    assert kept_tasks(tmp_path) == [0, 1, 2, 3]
    assert read_metadata(deployed_path(tmp_path, 2))["task"] == "2"


def test_weights_without_metadata_are_a_clear_error(tmp_path):
    from fomo_host.errors import FomoError
    from fomo_host.weights import save_weights

    save_weights({"weight": torch.ones(1)}, deployed_path(tmp_path, 0))
    with pytest.raises(FomoError, match="no fomo-host metadata"):
        export_run(tmp_path, tmp_path / "out.safetensors", task=0)
