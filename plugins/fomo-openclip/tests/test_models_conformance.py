"""The model components pass the model conformance suite."""

from __future__ import annotations

from fomo_host.testing import ModelConformance


class TestTinyCLIP(ModelConformance):
    model_name = "tiny-clip"
    invalid_params = {"image_size": 30}


class TestTinyCLIPWithOtherShapes(ModelConformance):
    model_name = "tiny-clip"
    params = {"image_size": 24, "vision_width": 64, "text_layers": 2, "embed_dim": 32}
