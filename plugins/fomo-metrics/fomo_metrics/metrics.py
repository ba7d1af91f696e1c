"""Zero-shot classification accuracy and image-text retrieval recall.

Both run in inference mode with large batches; class-template text embeddings
are computed once per evaluation of a dataset. Both count a tie with a wrong
candidate as a miss (the rank of the right answer is the number of wrong
candidates scoring at least as high), and a non-finite score is never a hit:
a model with NaN features scores 0.
"""

from __future__ import annotations

import torch

from fomo_host.api import EvaluationContext, ImageTextDataset, Metric, ModelBundle, SampleSet, prepare_images

from .params import RetrievalRecallParams, ZeroShotAccuracyParams


def _batches(indices: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    return list(torch.split(indices, batch_size))


def _test_indices(samples: SampleSet, context: EvaluationContext) -> torch.Tensor:
    return context.subset if context.subset is not None else torch.arange(len(samples))


def encode_images(bundle: ModelBundle, samples: SampleSet, indices: torch.Tensor, context: EvaluationContext) -> torch.Tensor:
    features = []
    for chunk in _batches(indices, context.batch_size):
        images = prepare_images(bundle, samples.images(chunk), context.device)
        with context.autocast():
            features.append(bundle.model.encode_image(images, normalize=True).float())
    return torch.cat(features)


def encode_texts(bundle: ModelBundle, texts: list[str], context: EvaluationContext) -> torch.Tensor:
    features = []
    for start in range(0, len(texts), context.batch_size):
        tokens = bundle.tokenizer(texts[start : start + context.batch_size]).to(context.device)
        with context.autocast():
            features.append(bundle.model.encode_text(tokens, normalize=True).float())
    return torch.cat(features)


def class_embeddings(bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> torch.Tensor:
    """One normalised text embedding per class: the mean over the dataset's templates."""
    prompts = [template.format(name) for name in dataset.classnames for template in dataset.templates]
    features = encode_texts(bundle, prompts, context).view(len(dataset.classnames), len(dataset.templates), -1)
    return torch.nn.functional.normalize(features.mean(dim=1), dim=-1)


class ZeroShotAccuracy(Metric):
    """Zero-shot classification accuracy: each image against every class's template embedding (CLIP, Radford et al. 2021).

    An image is a top-k hit when fewer than k other classes score at least as high as its
    own class (ties count against it) and its own class's score is finite.
    """

    def __init__(self, params: ZeroShotAccuracyParams) -> None:
        self.params = params
        self.primary = f"top{params.top_k[0]}"

    def applies_to(self, dataset: ImageTextDataset) -> bool:
        return dataset.task == "classification"

    def __call__(self, bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> dict[str, float]:
        assert dataset.test is not None
        indices = _test_indices(dataset.test, context)
        indices = indices[dataset.test.labels[indices] >= 0]
        classifier = class_embeddings(bundle, dataset, context)
        labels = dataset.test.labels[indices].to(context.device)
        correct = {k: torch.zeros((), device=context.device) for k in self.params.top_k}
        position = 0
        for chunk in _batches(indices, context.batch_size):
            features = encode_images(bundle, dataset.test, chunk, context)
            logits = features @ classifier.t()
            own = logits.gather(1, labels[position : position + len(chunk), None])
            outranking = (logits >= own) | ~torch.isfinite(logits)
            rank = outranking.sum(dim=1) - 1  # the own class is counted once (when finite)
            finite = torch.isfinite(own.squeeze(1))
            for k in self.params.top_k:
                correct[k] += (finite & (rank < k)).sum()
            position += len(chunk)
        total = max(len(indices), 1)
        return {f"top{k}": float(correct[k]) / total for k in self.params.top_k}


class RetrievalRecall(Metric):
    """Image-text retrieval recall@k over every caption of every test image (COCO-style), in both directions.

    Image to text: an image is a hit when fewer than k wrong captions score at least as high as
    its best-scoring own caption; the recall is over images. Text to image: a caption is a hit
    when fewer than k wrong images score at least as high as its own image; the recall is over
    all captions. Captions count as texts: a caption whose text is also one of another image's
    captions is right for both (no model can tell identical texts apart). Ties count as misses,
    non-finite scores never hit. ``recall@k``, the dataset's score at ``primary_k``, is the
    mean of the two directions.
    """

    def __init__(self, params: RetrievalRecallParams) -> None:
        self.params = params
        self.primary = f"recall@{params.primary_k}"

    def applies_to(self, dataset: ImageTextDataset) -> bool:
        return dataset.task == "retrieval"

    def __call__(self, bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> dict[str, float]:
        assert dataset.test is not None
        indices = _test_indices(dataset.test, context)
        caption_lists = dataset.test.all_captions(indices)
        texts = list(dict.fromkeys(caption for captions in caption_lists for caption in captions))
        text_index = {text: position for position, text in enumerate(texts)}
        relevant = torch.zeros(len(caption_lists), len(texts), dtype=torch.bool, device=context.device)
        occurrences = torch.zeros(len(texts), device=context.device)
        for image, captions in enumerate(caption_lists):
            for caption in captions:
                relevant[image, text_index[caption]] = True
                occurrences[text_index[caption]] += 1
        similarity = encode_images(bundle, dataset.test, indices, context) @ encode_texts(bundle, texts, context).t()
        image_rank, image_hit = ranks(similarity, relevant, occurrences)
        text_rank, text_hit = ranks(similarity.t(), relevant.t(), torch.ones(len(caption_lists), device=context.device))
        values: dict[str, float] = {}
        for k in self.params.k:
            image_to_text = float((image_hit & (image_rank < k)).float().mean())
            text_to_image = float(((text_hit & (text_rank < k)).float() * occurrences).sum() / occurrences.sum())
            values[f"image_to_text_recall@{k}"] = image_to_text
            values[f"text_to_image_recall@{k}"] = text_to_image
            values[f"recall@{k}"] = 0.5 * (image_to_text + text_to_image)
        return values


def ranks(scores: torch.Tensor, relevant: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query (row): the weighted count of wrong candidates (columns) scoring at least as high as the best right one,
    and whether that best score is finite (a query whose right candidates all score NaN is never a hit).

    A wrong candidate with a non-finite score counts as outranking.
    """
    best = torch.where(relevant, scores.nan_to_num(nan=-torch.inf), -torch.inf).amax(dim=1, keepdim=True)
    outranking = ((scores >= best) | ~torch.isfinite(scores)) & ~relevant
    return (outranking.float() * weight).sum(dim=1), torch.isfinite(best.squeeze(1))
