"""Metrics against values worked out by hand, with a model whose features we choose."""

from __future__ import annotations

import contextlib

import pytest
import torch
from fomo_metrics.metrics import RetrievalRecall, ZeroShotAccuracy
from fomo_metrics.params import RetrievalRecallParams, ZeroShotAccuracyParams
from pydantic import ValidationError

from fomo_host.api import EvaluationContext, ImageTextDataset, ModelBundle, TensorSampleSet

DIM = 4


class LookupModel(torch.nn.Module):
    """Image feature = one-hot of the image's first pixel value; text feature = one-hot of the word's index."""

    words = ["zero", "one", "two", "three"]

    def encode_image(self, images, normalize=False):
        # images arrive normalised with mean 0, std 1/255 -> pixel value back
        index = images[:, 0, 0, 0].round().long()
        return torch.nn.functional.one_hot(index, DIM).float()

    def encode_text(self, tokens, normalize=False):
        return torch.nn.functional.one_hot(tokens[:, 0], DIM).float()


def bundle() -> ModelBundle:
    def tokenizer(texts):
        return torch.tensor([[LookupModel.words.index(text.split()[-1])] for text in texts])

    return ModelBundle(LookupModel(), tokenizer, 2, (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))


def context(subset=None, batch_size=2) -> EvaluationContext:
    return EvaluationContext(torch.device("cpu"), batch_size, contextlib.nullcontext, subset)


def images(values):
    return torch.tensor(values, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()


def test_zero_shot_accuracy_counts_top1_and_topk():
    # image i "looks like" class values[i]; labels say which is right
    test = TensorSampleSet(images([0, 1, 2, 3, 0]), torch.tensor([0, 1, 3, 3, -1]), [["x"]] * 5)
    dataset = ImageTextDataset("d", "adaptation", "classification", ["zero", "one", "two", "three"], ["a {}"], test=test)
    result = ZeroShotAccuracy(ZeroShotAccuracyParams(top_k=[1, 4]))(bundle(), dataset, context())
    # label -1 is skipped; 3 of 4 labelled images are right; with all 4 classes every label is in the top 4
    assert result == {"top1": pytest.approx(0.75), "top4": pytest.approx(1.0)}
    subset = ZeroShotAccuracy(ZeroShotAccuracyParams())(bundle(), dataset, context(subset=torch.tensor([2, 3])))
    assert subset["top1"] == pytest.approx(0.5)


def test_retrieval_recall_scores_every_caption_and_counts_ties_as_misses():
    # image i looks like word i; image 0 has captions "zero" and "one", image 1 "two", image 2 "two" and "three"
    test = TensorSampleSet(images([0, 1, 2]), torch.full((3,), -1), [["a zero", "a one"], ["a two"], ["a two", "a three"]])
    dataset = ImageTextDataset("r", "adaptation", "retrieval", [], [], test=test)
    result = RetrievalRecall(RetrievalRecallParams(k=[1, 3], primary_k=1))(bundle(), dataset, context())
    # image -> text, against its best own caption: image 0 scores 1 on "zero", nothing wrong reaches it: rank 0;
    # image 1 scores 0 on "two" and the wrong "zero", "one" (1) and "three" tie or beat it: rank 3 (ties are misses);
    # image 2 scores 1 on "two" ("two" is also image 1's caption: the same text, right for both): rank 0
    assert result["image_to_text_recall@1"] == pytest.approx(2 / 3)
    assert result["image_to_text_recall@3"] == pytest.approx(2 / 3)
    # text -> image over the 5 captions: "zero" rank 0; "one" scores 0 on image 0, image 1 (1) and image 2 (0, a tie)
    # outrank it: rank 2; both "two"s: image 2 (right) scores 1: rank 0; "three" scores 0 everywhere: rank 2
    assert result["text_to_image_recall@1"] == pytest.approx(3 / 5)
    assert result["text_to_image_recall@3"] == pytest.approx(1.0)
    assert result["recall@1"] == pytest.approx((2 / 3 + 3 / 5) / 2)


class NaNModel(LookupModel):
    """Features that are not numbers, in one tower or the other."""

    def __init__(self, tower: str) -> None:
        super().__init__()
        self.tower = tower

    def encode_image(self, images, normalize=False):
        features = super().encode_image(images)
        return features * float("nan") if self.tower == "image" else features

    def encode_text(self, tokens, normalize=False):
        features = super().encode_text(tokens)
        return features * float("nan") if self.tower == "text" else features


@pytest.mark.parametrize("tower", ["image", "text"])
def test_non_finite_features_never_count_as_hits(tower):
    nan_bundle = bundle()
    nan_bundle.model = NaNModel(tower)
    retrieval = TensorSampleSet(images([0, 1, 2]), torch.full((3,), -1), [["a zero"], ["a one"], ["a two"]])
    result = RetrievalRecall(RetrievalRecallParams())(
        nan_bundle, ImageTextDataset("r", "adaptation", "retrieval", [], [], test=retrieval), context()
    )
    assert all(value == 0.0 for value in result.values())
    test = TensorSampleSet(images([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]), [["x"]] * 4)
    dataset = ImageTextDataset("d", "adaptation", "classification", ["zero", "one", "two", "three"], ["a {}"], test=test)
    accuracy = ZeroShotAccuracy(ZeroShotAccuracyParams(top_k=[1, 4]))(nan_bundle, dataset, context())
    assert accuracy == {"top1": 0.0, "top4": 0.0}


def test_zero_shot_accuracy_counts_a_tie_with_a_wrong_class_as_a_miss():
    # image value 2 scores 0 on every class: its label 3 ties with classes 0, 1 (and loses to 2)
    test = TensorSampleSet(images([2, 0]), torch.tensor([3, 0]), [["x"]] * 2)
    dataset = ImageTextDataset("d", "adaptation", "classification", ["zero", "one", "two", "three"], ["a {}"], test=test)
    result = ZeroShotAccuracy(ZeroShotAccuracyParams(top_k=[1, 3, 4]))(bundle(), dataset, context())
    assert result == {"top1": pytest.approx(0.5), "top3": pytest.approx(0.5), "top4": pytest.approx(1.0)}


def test_metric_params_are_checked():
    with pytest.raises(ValidationError, match="primary_k 3 must be one of k"):
        RetrievalRecallParams(k=[1, 5], primary_k=3)
    with pytest.raises(ValidationError, match=">= 1"):
        ZeroShotAccuracyParams(top_k=[0])
    assert ZeroShotAccuracy(ZeroShotAccuracyParams(top_k=[5, 1])).primary == "top5"
