"""A toy CLIP and toy image-text sets: what the conformance suites feed components, in milliseconds, with no plugin.

The toy model keeps the contract of :class:`fomo_host.components.ModelBundle`
(``model(images, tokens)`` gives normalised features and the temperature;
``encode_image`` / ``encode_text`` take ``normalize=True``), so a metric or an
ordering that works with it works with open_clip's models. Its features are fixed
functions of the pixels and the words, so scores are reproducible without training.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..components import ModelBundle
from ..data import ImageTextDataset, Role, TensorSampleSet

VOCABULARY = 512
CONTEXT_LENGTH = 8


def toy_tokenizer(texts: Sequence[str]) -> torch.Tensor:
    """Words hashed into a small vocabulary (0 pads), ``[len(texts), CONTEXT_LENGTH]`` int64; the same on every run."""
    rows = []
    for text in texts:
        ids = [1 + zlib.crc32(word.encode()) % (VOCABULARY - 1) for word in text.lower().split()][:CONTEXT_LENGTH]
        rows.append(ids + [0] * (CONTEXT_LENGTH - len(ids)))
    return torch.tensor(rows, dtype=torch.long)


class ToyCLIP(nn.Module):
    """A linear image tower on pooled pixels and a bag-of-words text tower, with open_clip's interface."""

    def __init__(self, image_size: int, embed_dim: int = 16, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.image_size = image_size
        self.visual = nn.Linear(3 * 4 * 4, embed_dim)
        self.token_embedding = nn.Embedding(VOCABULARY, embed_dim, padding_idx=0)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        with torch.no_grad():
            self.visual.weight.copy_(torch.randn(self.visual.weight.shape, generator=generator) * 0.5)
            self.visual.bias.zero_()
            self.token_embedding.weight.copy_(torch.randn(self.token_embedding.weight.shape, generator=generator))
            self.token_embedding.weight[0].zero_()

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(images.float(), 4).flatten(1)
        features = self.visual(pooled)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).float()
        features = (self.token_embedding(tokens) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True), self.logit_scale.exp()


def toy_bundle(image_size: int = 16, seed: int = 0) -> ModelBundle:
    """The toy CLIP as a model component returns it."""
    model = ToyCLIP(image_size, seed=seed).eval()
    return ModelBundle(model, toy_tokenizer, image_size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), name="toy-clip")


def _images(colours: torch.Tensor, image_size: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 images ``[N, 3, S, S]``: each a colour with noise."""
    noise = torch.randint(-30, 31, (len(colours), 3, image_size, image_size), generator=generator)
    return (colours[:, :, None, None] + noise).clamp(0, 255).to(torch.uint8)


def toy_classification_set(
    name: str = "toy-classes",
    classes: int = 4,
    per_class: int = 6,
    image_size: int = 16,
    role: Role = "adaptation",
    seed: int = 0,
    test_per_class: int | None = None,
) -> ImageTextDataset:
    """A classification set: a colour per class, ``per_class`` images per class in each split (``test_per_class`` in the
    test split if given; test only for zero-shot sets, train only for pretraining sets)."""
    generator = torch.Generator().manual_seed(zlib.crc32(f"{name}:{seed}".encode()))
    palette = torch.randint(0, 256, (classes, 3), generator=generator)
    classnames = [f"{name} class {index}" for index in range(classes)]

    def split(count: int) -> TensorSampleSet:
        labels = torch.arange(classes).repeat_interleave(count)
        captions = [[f"a photo of a {classnames[label]}.", f"a {classnames[label]}."] for label in labels.tolist()]
        return TensorSampleSet(_images(palette[labels], image_size, generator), labels, captions)

    train = None if role == "zero_shot" else split(per_class)
    test = None if role == "pretraining" else split(per_class if test_per_class is None else test_per_class)
    return ImageTextDataset(name, role, "classification", classnames, ["a photo of a {}.", "a {}."], train, test)


def toy_retrieval_set(
    name: str = "toy-pairs", samples: int = 12, image_size: int = 16, role: Role = "adaptation", seed: int = 0
) -> ImageTextDataset:
    """A retrieval set: every image its own colour and caption, two captions for some images."""
    generator = torch.Generator().manual_seed(zlib.crc32(f"{name}:{seed}".encode()))

    def split() -> TensorSampleSet:
        colours = torch.randint(0, 256, (samples, 3), generator=generator)
        captions = [
            [f"a {name} picture number {index}"] + ([f"picture {index} of {name}"] if index % 3 == 0 else []) for index in range(samples)
        ]
        return TensorSampleSet(_images(colours, image_size, generator), torch.full((samples,), -1), captions)

    train = None if role == "zero_shot" else split()
    test = None if role == "pretraining" else split()
    return ImageTextDataset(name, role, "retrieval", [], [], train, test)
