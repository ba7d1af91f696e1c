"""Pretrained weights by name: tags and hub names found in a local (fake) cache, never downloaded; clear errors when missing."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch
from fomo_openclip.models import build_open_clip, tiny_clip_config
from fomo_openclip.params import OpenCLIPParams, TinyCLIPParams
from fomo_openclip.pretrained import resolve_tag
from pydantic import ValidationError
from safetensors.torch import save_file

from fomo_host.api import OPEN_CLIP_ARCHITECTURE, OPEN_CLIP_CONFIG, BuildContext

LAION_REPO = "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache (and an empty open_clip URL cache under a fake home)."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return cache


def put_in_hub_cache(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "0123456789abcdef") -> Path:
    """Files laid out as huggingface_hub writes them: blobs behind snapshots/<revision>/, refs/main naming the revision."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for name, content in files.items():
        (snapshot / name).write_bytes(content)
    return snapshot


def state_dict_bytes(model: torch.nn.Module, path: Path) -> bytes:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path.read_bytes()


def test_a_tag_resolves_from_the_hub_cache(hub_cache):
    snapshot = put_in_hub_cache(hub_cache, LAION_REPO, {"open_clip_model.safetensors": b"weights"})
    resolved = resolve_tag("ViT-B-16", "laion2b_s34b_b88k")
    assert resolved.path == snapshot / "open_clip_model.safetensors"
    assert resolved.quick_gelu is None and resolved.preprocess["mean"][0] == pytest.approx(0.48145466)
    # the spec's params validate: the weights are here
    assert OpenCLIPParams(architecture="ViT-B-16", pretrained="laion2b_s34b_b88k").pretrained == "laion2b_s34b_b88k"


def test_a_pickled_hub_file_is_found_when_there_is_no_safetensors(hub_cache):
    snapshot = put_in_hub_cache(hub_cache, LAION_REPO, {"open_clip_pytorch_model.bin": b"weights"})
    assert resolve_tag("ViT-B-16", "laion2b_s34b_b88k").path == snapshot / "open_clip_pytorch_model.bin"


def test_a_missing_tag_is_one_line_saying_where_it_looked_and_how_to_fetch_it(hub_cache):
    with pytest.raises(ValidationError) as caught:
        OpenCLIPParams(architecture="ViT-B-16", pretrained="laion2b_s34b_b88k")
    message = caught.value.errors()[0]["msg"]
    assert "\n" not in message
    assert f"{LAION_REPO}/open_clip_model.safetensors or open_clip_pytorch_model.bin in {hub_cache}" in message
    assert "open_clip.create_model('ViT-B-16', pretrained='laion2b_s34b_b88k')" in message
    # schema-only validation does not look
    OpenCLIPParams.model_validate({"architecture": "ViT-B-16", "pretrained": "laion2b_s34b_b88k"}, context={"schema_only": True})


def test_an_unknown_name_lists_the_architectures_tags(hub_cache):
    with pytest.raises(ValidationError, match=r"nor is it a pretrained tag of ViT-B-16 \(its tags: openai, laion400m_e31"):
        OpenCLIPParams(architecture="ViT-B-16", pretrained="laion5b")


def test_openai_weights_come_from_open_clips_url_cache_and_need_quick_gelu(hub_cache, tmp_path):
    url_cache = tmp_path / "home" / ".cache" / "clip"
    url_cache.mkdir(parents=True)
    (url_cache / "ViT-B-16.pt").write_bytes(b"weights")
    resolved = resolve_tag("ViT-B-16", "openai")
    assert resolved.path == url_cache / "ViT-B-16.pt" and resolved.quick_gelu is True
    OpenCLIPParams(architecture="ViT-B-16", pretrained="openai")
    with pytest.raises(ValidationError, match="force_quick_gelu = false contradicts the weights 'openai'"):
        OpenCLIPParams(architecture="ViT-B-16", pretrained="openai", force_quick_gelu=False)


def test_a_tagged_model_builds_from_the_cache_with_the_tags_settings(hub_cache, tmp_path, monkeypatch):
    """A fake tag of a small architecture, so that real weights stay small: QuickGELU and normalisation come with the tag."""
    real = open_clip.get_pretrained_cfg
    tag = {"hf_hub": "fomo-test/vit-s-32/", "quick_gelu": True, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    fake = ("ViT-S-32", "fake")
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda arch, name: tag if (arch, name) == fake else real(arch, name))
    torch.manual_seed(3)
    reference = open_clip.create_model("ViT-S-32", force_quick_gelu=True)
    put_in_hub_cache(hub_cache, "fomo-test/vit-s-32", {"open_clip_model.safetensors": state_dict_bytes(reference, tmp_path / "w.st")})
    bundle = build_open_clip(OpenCLIPParams(architecture="ViT-S-32", pretrained="fake"), BuildContext(seed=0, cache_dir=tmp_path))
    loaded = bundle.model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.state_dict().items())
    assert type(bundle.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert bundle.image_mean == (0.5, 0.5, 0.5) and bundle.image_std == (0.25, 0.25, 0.25)
    assert bundle.info[OPEN_CLIP_ARCHITECTURE] == "ViT-S-32" and bundle.info[OPEN_CLIP_CONFIG]["quick_gelu"] is True
    # the same file by its hub name; no tag, so no QuickGELU unless asked for
    by_hub_name = OpenCLIPParams(architecture="ViT-S-32", pretrained="hf-hub:fomo-test/vit-s-32", force_quick_gelu=True)
    loaded = build_open_clip(by_hub_name, BuildContext(seed=0, cache_dir=tmp_path)).model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.state_dict().items())


def test_a_hub_model_builds_from_its_cached_config_and_weights(hub_cache, tmp_path):
    config = tiny_clip_config(TinyCLIPParams())
    torch.manual_seed(4)
    reference = open_clip.model.CLIP(**config)
    files = {
        "open_clip_config.json": json.dumps({"model_cfg": config, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}).encode(),
        "open_clip_model.safetensors": state_dict_bytes(reference, tmp_path / "w.st"),
    }
    put_in_hub_cache(hub_cache, "fomo-test/tiny-clip", files)
    params = OpenCLIPParams(architecture="hf-hub:fomo-test/tiny-clip")
    bundle = build_open_clip(params, BuildContext(seed=0, cache_dir=tmp_path))
    loaded = bundle.model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.state_dict().items())
    assert bundle.image_size == 32 and bundle.image_mean == (0.5, 0.5, 0.5)
    assert bundle.tokenizer(["a red circle"]).shape == (1, 20)
    assert OPEN_CLIP_ARCHITECTURE not in bundle.info and bundle.info[OPEN_CLIP_CONFIG]["embed_dim"] == 64
    with pytest.raises(ValidationError, match="fomo-test/other/open_clip_config.json is not in the Hugging Face cache"):
        OpenCLIPParams(architecture="hf-hub:fomo-test/other")
    with pytest.raises(ValidationError, match="brings its own weights"):
        OpenCLIPParams(architecture="hf-hub:fomo-test/tiny-clip", pretrained="x.pt")


def test_checkpoint_paths_expand_home_and_environment_variables(tmp_path, monkeypatch):
    checkpoint = tmp_path / "ckpt" / "model.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    monkeypatch.setenv("FOMO_CKPT", str(checkpoint.parent))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert OpenCLIPParams(architecture="ViT-B-16", pretrained="${FOMO_CKPT}/model.pt").pretrained == str(checkpoint)
    assert OpenCLIPParams(architecture="ViT-B-16", pretrained="~/ckpt/model.pt").pretrained == str(checkpoint)
    monkeypatch.delenv("FOMO_CKPT")
    with pytest.raises(ValidationError, match="environment variable FOMO_CKPT in '\\$\\{FOMO_CKPT\\}/model.pt' is not set"):
        OpenCLIPParams(architecture="ViT-B-16", pretrained="${FOMO_CKPT}/model.pt")
