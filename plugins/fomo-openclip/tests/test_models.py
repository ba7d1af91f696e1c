"""The open_clip model components: a local checkpoint loads exactly, the tiny CLIP is small and well-formed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fomo_openclip.models import build_open_clip, build_tiny_clip
from fomo_openclip.params import OpenCLIPParams, TinyCLIPParams
from pydantic import ValidationError

from fomo_host.api import BuildContext


def context(tmp_path: Path) -> BuildContext:
    return BuildContext(seed=0, cache_dir=tmp_path)


def test_tiny_clip_is_a_small_open_clip_model(tmp_path):
    bundle = build_tiny_clip(TinyCLIPParams(), context(tmp_path))
    parameters = sum(p.numel() for p in bundle.model.parameters())
    assert 1e6 < parameters < 5e6
    tokens = bundle.tokenizer(["a red circle", "the letter a"])
    assert tokens.shape == (2, 20) and tokens.dtype == torch.long
    images = torch.randn(2, 3, 32, 32)
    image_features, text_features, scale = bundle.model(images, tokens)[:3]
    assert image_features.shape == text_features.shape == (2, 64)
    assert torch.allclose(image_features.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-4)


def test_tiny_clip_params_reject_shapes_that_do_not_fit():
    with pytest.raises(ValidationError, match="multiple of patch_size"):
        TinyCLIPParams(image_size=30)
    with pytest.raises(ValidationError, match="multiple of text_heads"):
        TinyCLIPParams(text_width=66)
    with pytest.raises(ValidationError, match="extra"):
        TinyCLIPParams(widht=3)


def test_open_clip_params_check_architecture_and_checkpoint(tmp_path):
    with pytest.raises(ValidationError, match="unknown open_clip architecture 'ViT-Q-99'"):
        OpenCLIPParams(architecture="ViT-Q-99")
    with pytest.raises(ValidationError, match="does not exist"):
        OpenCLIPParams(architecture="ViT-B-16", pretrained=tmp_path / "missing.pt")


def test_open_clip_loads_a_local_checkpoint_exactly(tmp_path):
    import open_clip

    torch.manual_seed(1)
    reference = open_clip.create_model("ViT-S-32", pretrained=None)
    checkpoint = tmp_path / "vit-s-32.pt"
    torch.save({"state_dict": reference.state_dict()}, checkpoint)
    bundle = build_open_clip(OpenCLIPParams(architecture="ViT-S-32", pretrained=checkpoint), context(tmp_path))
    loaded = bundle.model.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in reference.state_dict().items())
    assert bundle.image_size == 224 and len(bundle.image_mean) == 3


def test_open_clip_reports_a_checkpoint_of_another_architecture(tmp_path):
    from fomo_host.api import FomoError

    checkpoint = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"nonsense": torch.zeros(1)}}, checkpoint)
    with pytest.raises(FomoError, match="cannot load"):
        build_open_clip(OpenCLIPParams(architecture="ViT-S-32", pretrained=checkpoint), context(tmp_path))
