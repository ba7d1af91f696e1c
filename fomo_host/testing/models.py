"""Conformance tests for model components: subclass :class:`ModelConformance` in your plugin's tests.

::

    from fomo_host.testing import ModelConformance

    class TestMyModel(ModelConformance):
        model_name = "my-clip"
        params = {"width": 64}

A subclass gets: the params validate; the bundle says its resolution and normalisation;
the tokenizer gives int64 ``[N, L]``; ``model(images, tokens)`` gives normalised image
and text features of one width and a positive temperature, equal to ``encode_image`` /
``encode_text`` with ``normalize=True``; the same seed builds the same model; its
state dict loads into another build, which then computes the same; and a contrastive
loss reaches its parameters' gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ..components import BuildContext, ModelBundle
from .helpers import build_component, validate_params


class ModelConformance:
    """The conformance suite of the ``model`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    model_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the model must reject (None: only the unknown-key check)."""
    batch: ClassVar[int] = 3
    tolerance: ClassVar[float] = 1e-5

    def build(self, tmp_path: Path, seed: int = 0) -> ModelBundle:
        torch.manual_seed(seed)
        bundle: ModelBundle = build_component("model", self.model_name, self.params, BuildContext(seed=seed, cache_dir=tmp_path))
        return bundle

    @pytest.fixture(scope="class")
    @classmethod
    def bundle(cls, tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
        """One model per class, shared by the tests that only read it."""
        return cls().build(tmp_path_factory.mktemp(f"{cls.model_name}-model"))

    def inputs(self, bundle: ModelBundle) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(self.batch, 3, bundle.image_size, bundle.image_size, generator=generator)
        tokens = bundle.tokenizer(["a photo of a cat.", "a red square", "two dots on grey"][: self.batch])
        return images, tokens

    def test_params_validate_and_reject_bad_values(self) -> None:
        validate_params("model", self.model_name, self.params)
        with pytest.raises(ValidationError):
            validate_params("model", self.model_name, {**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("model", self.model_name, {**self.params, **self.invalid_params})

    def test_the_bundle_says_how_to_feed_the_model(self, bundle: ModelBundle) -> None:
        assert isinstance(bundle.image_size, int) and bundle.image_size > 0
        assert len(bundle.image_mean) == 3 and len(bundle.image_std) == 3 and all(s > 0 for s in bundle.image_std)
        tokens = bundle.tokenizer(["a photo of a cat.", "x"])
        assert tokens.dtype == torch.int64 and tokens.ndim == 2 and tokens.shape[0] == 2

    def test_forward_gives_normalised_features_and_a_temperature(self, bundle: ModelBundle) -> None:
        model = bundle.model.eval()
        images, tokens = self.inputs(bundle)
        with torch.no_grad():
            image_features, text_features, logit_scale = model(images, tokens)[:3]
            encoded_images = model.encode_image(images, normalize=True)  # type: ignore[operator]
            encoded_texts = model.encode_text(tokens, normalize=True)  # type: ignore[operator]
        assert image_features.shape[0] == text_features.shape[0] == self.batch
        assert image_features.shape[1] == text_features.shape[1], "image and text features differ in width"
        ones = torch.ones(self.batch)
        torch.testing.assert_close(image_features.norm(dim=-1), ones, atol=1e-4, rtol=0)
        torch.testing.assert_close(text_features.norm(dim=-1), ones, atol=1e-4, rtol=0)
        assert logit_scale.numel() == 1 and float(logit_scale) > 0
        torch.testing.assert_close(encoded_images, image_features, atol=self.tolerance, rtol=self.tolerance)
        torch.testing.assert_close(encoded_texts, text_features, atol=self.tolerance, rtol=self.tolerance)

    def test_the_seed_decides_the_model_and_its_state_dict_round_trips(self, tmp_path: Path) -> None:
        first, second, other = self.build(tmp_path, seed=0), self.build(tmp_path, seed=0), self.build(tmp_path, seed=1)
        state = first.model.state_dict()
        assert all(torch.equal(state[key], tensor) for key, tensor in second.model.state_dict().items()), (
            "the same seed built another model"
        )
        other.model.load_state_dict(state, strict=True)
        images, tokens = self.inputs(first)
        with torch.no_grad():
            expected, loaded = first.model.eval()(images, tokens)[:2], other.model.eval()(images, tokens)[:2]
        for a, b in zip(expected, loaded, strict=True):
            torch.testing.assert_close(a, b, atol=self.tolerance, rtol=self.tolerance)

    def test_a_contrastive_loss_reaches_the_parameters(self, tmp_path: Path) -> None:
        bundle = self.build(tmp_path)
        model = bundle.model.train()
        images, tokens = self.inputs(bundle)
        image_features, text_features, logit_scale = model(images, tokens)[:3]
        logits = logit_scale * image_features @ text_features.T
        targets = torch.arange(self.batch)
        ((F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2).backward()
        with_gradient = [name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
        assert with_gradient, "no parameter received a gradient"
