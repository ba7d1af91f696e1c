"""Metrics against values worked out by hand, with a model whose features we choose."""

from __future__ import annotations

import contextlib

import pytest
import torch
from fomo_metrics.metrics import RetrievalRecall, RetrievalRecallParams, ZeroShotAccuracy, ZeroShotAccuracyParams
from pydantic import ValidationError

from fomo_host.components import EvaluationContext, ModelBundle
from fomo_host.data import ImageTextDataset, TensorSampleSet

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


def test_retrieval_recall_in_both_directions():
    # images 0,1,2 with captions naming 0, 2, 2: image 1's caption is wrong; two captions tie on image 2
    test = TensorSampleSet(images([0, 1, 2]), torch.full((3,), -1), [["a zero"], ["a two"], ["a two"]])
    dataset = ImageTextDataset("r", "adaptation", "retrieval", [], [], test=test)
    result = RetrievalRecall(RetrievalRecallParams(k=[1, 2], primary_k=1))(bundle(), dataset, context())
    # image->text: img0 rank 0 (hit); img1 scores 0 on its caption, others also 0 -> rank 0 (ties do not count); img2 rank 0
    assert result["image_to_text_recall@1"] == pytest.approx(1.0)
    # text->image: caption1 ("two") prefers image 2 over image 1 -> rank 1; others rank 0
    assert result["text_to_image_recall@1"] == pytest.approx(2 / 3)
    assert result["text_to_image_recall@2"] == pytest.approx(1.0)
    assert result["recall@1"] == pytest.approx((1 + 2 / 3) / 2)


def test_metric_params_are_checked():
    with pytest.raises(ValidationError, match="primary_k 3 must be one of k"):
        RetrievalRecallParams(k=[1, 5], primary_k=3)
    with pytest.raises(ValidationError, match=">= 1"):
        ZeroShotAccuracyParams(top_k=[0])
    assert ZeroShotAccuracy(ZeroShotAccuracyParams(top_k=[5, 1])).primary == "top5"
