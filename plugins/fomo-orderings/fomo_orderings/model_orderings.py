"""Orderings that ask the base model: by text similarity of the concepts, and by its zero-shot performance on them.

Both run once when the stream is built, on the base model (after any warm start),
in inference mode on the run's device, and leave the model's train/eval mode as
they found it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from fomo_host.api import BuildContext, Concept, FomoError, ImageTextDataset, ModelBundle, prepare_images

from .orderings import Ordered, reversed_if
from .params import PerformanceParams, SimilarityParams


@contextmanager
def inference(bundle: ModelBundle) -> Iterator[torch.nn.Module]:
    model = bundle.model
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


def needs_model(context: BuildContext, ordering: str) -> ModelBundle:
    if context.bundle is None:
        raise FomoError(f"ordering {ordering!r} needs the base model, which the host did not pass")
    return context.bundle


def dataset_of(context: BuildContext, concept: Concept, ordering: str) -> ImageTextDataset:
    if concept.dataset not in context.datasets:
        raise FomoError(f"ordering {ordering!r}: concept {concept} names dataset {concept.dataset!r}, which the run does not have")
    return context.datasets[concept.dataset]


def encode_texts(bundle: ModelBundle, texts: list[str], device: torch.device, batch_size: int) -> torch.Tensor:
    features = [
        bundle.model.encode_text(bundle.tokenizer(texts[start : start + batch_size]).to(device), normalize=True).float()
        for start in range(0, len(texts), batch_size)
    ]
    return torch.cat(features)


# ----------------------------------------------------------------------------- similarity


class SimilarityOrdering:
    """A nearest-neighbour chain over the base model's text embeddings of the concepts: from ``start``, always the
    most similar concept not yet taken, so neighbouring tasks hold semantically close concepts (the paper's
    similarity-ordered streams); ``reverse`` runs the chain backwards, ending at ``start``."""

    def __init__(self, params: SimilarityParams, context: BuildContext) -> None:
        self.params = params
        self.context = context
        self.bundle = needs_model(context, "similarity")

    def texts(self, concept: Concept) -> list[str]:
        name = concept.classname if concept.classname is not None else concept.dataset
        dataset = dataset_of(self.context, concept, "similarity")
        if self.params.prompt == "name" or not dataset.templates:
            return [name]
        return [template.format(name) for template in dataset.templates]

    def embeddings(self, concepts: list[Concept]) -> torch.Tensor:
        prompts = [self.texts(concept) for concept in concepts]
        flat = [text for texts in prompts for text in texts]
        with inference(self.bundle):
            features = encode_texts(self.bundle, flat, self.context.device, self.params.batch_size)
        owner = torch.repeat_interleave(torch.arange(len(concepts)), torch.tensor([len(t) for t in prompts])).to(features.device)
        summed = torch.zeros(len(concepts), features.shape[1], device=features.device).index_add_(0, owner, features)
        return torch.nn.functional.normalize(summed, dim=-1)

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        ordered = sorted(concepts)
        start = 0
        if self.params.start is not None:
            wanted = Concept.parse(self.params.start)
            if wanted not in ordered:
                raise FomoError(f"data.ordering.params.start: {self.params.start!r} is not a stream concept, e.g. {str(ordered[0])!r}")
            start = ordered.index(wanted)
        embeddings = self.embeddings(ordered)
        taken = torch.zeros(len(ordered), dtype=torch.bool, device=embeddings.device)
        chain = [start]
        taken[start] = True
        for _ in range(len(ordered) - 1):
            similarity = embeddings @ embeddings[chain[-1]]
            similarity[taken] = -float("inf")
            following = int(torch.argmax(similarity))  # the first of equals: ties follow the sorted order
            chain.append(following)
            taken[following] = True
        return reversed_if([ordered[i] for i in chain], self.params.reverse)


# ----------------------------------------------------------------------------- performance


class PerformanceOrdering:
    """Concepts from easy to hard by the base model's zero-shot performance on the adaptation test sets: per-class
    top-1 accuracy for classification sets (a class without test images counts as 0), the set's mean recall@5
    (both directions) for every concept of a retrieval set; ``reverse`` goes hard to easy."""

    def __init__(self, params: PerformanceParams, context: BuildContext) -> None:
        self.params = params
        self.context = context
        self.bundle = needs_model(context, "performance")

    def image_features(self, dataset: ImageTextDataset) -> torch.Tensor:
        assert dataset.test is not None
        indices = torch.arange(len(dataset.test))
        features = []
        for chunk in torch.split(indices, self.params.batch_size):
            images = prepare_images(self.bundle, dataset.test.images(chunk), self.context.device)
            features.append(self.bundle.model.encode_image(images, normalize=True).float())
        return torch.cat(features)

    def class_accuracy(self, dataset: ImageTextDataset) -> dict[str, float]:
        assert dataset.test is not None
        prompts = [template.format(name) for name in dataset.classnames for template in dataset.templates]
        text = encode_texts(self.bundle, prompts, self.context.device, self.params.batch_size)
        classifier = torch.nn.functional.normalize(text.view(len(dataset.classnames), len(dataset.templates), -1).mean(dim=1), dim=-1)
        predicted = (self.image_features(dataset) @ classifier.t()).argmax(dim=-1).cpu()
        labels = dataset.test.labels
        accuracy = {}
        for index, name in enumerate(dataset.classnames):
            mine = labels == index
            accuracy[name] = float((predicted[mine] == index).float().mean()) if bool(mine.any()) else 0.0
        return accuracy

    def retrieval_recall(self, dataset: ImageTextDataset, k: int = 5) -> float:
        assert dataset.test is not None
        captions = dataset.test.captions(torch.arange(len(dataset.test)), torch.Generator().manual_seed(0))
        similarity = self.image_features(dataset) @ encode_texts(self.bundle, captions, self.context.device, self.params.batch_size).t()
        matched = similarity.diagonal()
        image_to_text = float(((similarity > matched[:, None]).sum(dim=1) < k).float().mean())
        text_to_image = float(((similarity > matched[None, :]).sum(dim=0) < k).float().mean())
        return 0.5 * (image_to_text + text_to_image)

    def scores(self, concepts: Sequence[Concept]) -> dict[Concept, float]:
        scores: dict[Concept, float] = {}
        with inference(self.bundle):
            for name in dict.fromkeys(c.dataset for c in concepts):
                dataset = dataset_of(self.context, Concept(name), "performance")
                if dataset.test is None or len(dataset.test) == 0:
                    raise FomoError(f"ordering 'performance' needs a test split of dataset {name!r}")
                mine = [c for c in concepts if c.dataset == name]
                if dataset.task == "classification":
                    accuracy = self.class_accuracy(dataset)
                    scores.update({c: accuracy.get(c.classname or "", 0.0) for c in mine})
                else:
                    recall = self.retrieval_recall(dataset)
                    scores.update({c: recall for c in mine})
        return scores

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> Ordered:
        scores = self.scores(concepts)
        ordered = sorted(sorted(concepts), key=lambda c: -scores[c])  # stable: ties keep the sorted order
        return reversed_if(ordered, self.params.reverse)
