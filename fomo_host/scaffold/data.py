"""Templates of the kinds around the model: model, dataset, ordering, metric."""

from __future__ import annotations

from .package import KindTemplate

MODEL = KindTemplate(
    kind="model",
    hook="register_models",
    register_type="ModelRegister",
    summary="A small CLIP in plain torch: a patch-convolution image tower, a byte-level bag-of-tokens text tower.",
    params='''from pydantic import BaseModel, ConfigDict, Field, model_validator


class Params(BaseModel):
    """Settings of the model (``model.params``)."""

    model_config = ConfigDict(extra="forbid")

    image_size: int = Field(default=32, ge=8, description="input resolution in pixels (a multiple of patch_size)")
    patch_size: int = Field(default=8, ge=1, description="side of the image patches the first convolution sees")
    width: int = Field(default=64, ge=1, description="width of both towers")
    embed_dim: int = Field(default=32, ge=1, description="width of the shared image-text embedding")
    context_length: int = Field(default=32, ge=1, description="tokens per text (longer texts are cut)")

    @model_validator(mode="after")
    def _whole_patches(self) -> Params:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        return self
''',
    component='''import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fomo_host.api import BuildContext, ModelBundle

from .params import Params

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VOCABULARY = 257
"""Token 0 pads; a text's UTF-8 bytes are tokens 1..256."""


class TinyCLIP(nn.Module):
    """Image patches through a convolution, averaged; text bytes embedded, averaged; both projected and compared.

    It keeps open_clip's interface: ``model(images, tokens)`` gives normalised image and text features and the
    temperature, and ``encode_image`` / ``encode_text`` take ``normalize=True``.
    """

    def __init__(self, params: Params) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, params.width, kernel_size=params.patch_size, stride=params.patch_size)
        self.image_projection = nn.Linear(params.width, params.embed_dim)
        self.token_embedding = nn.Embedding(VOCABULARY, params.width, padding_idx=0)
        self.text_projection = nn.Linear(params.width, params.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.image_projection(F.gelu(self.patches(images)).mean(dim=(2, 3)))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).float()
        pooled = (self.token_embedding(tokens) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        features = self.text_projection(pooled)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True), self.logit_scale.exp()


class ByteTokenizer:
    """Texts as their UTF-8 bytes (shifted by one), cut or padded to ``context_length``: int64 ``[len(texts), length]``."""

    def __init__(self, context_length: int) -> None:
        self.context_length = context_length

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        rows = [[byte + 1 for byte in text.encode("utf-8")][: self.context_length] for text in texts]
        return torch.tensor([row + [0] * (self.context_length - len(row)) for row in rows], dtype=torch.long)


def build(params: Params, context: BuildContext) -> ModelBundle:
    # the run's seed alone decides the initial weights, whatever random numbers were drawn before
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        model = TinyCLIP(params)
    tokenizer = ByteTokenizer(params.context_length)
    return ModelBundle(model, tokenizer, params.image_size, CLIP_MEAN, CLIP_STD, name="__NAME__")
''',
    test="""from fomo_host.testing import ModelConformance


class Test__CLASS__(ModelConformance):
    model_name = "__NAME__"
    params = {"image_size": 16, "width": 16, "embed_dim": 8}
    invalid_params = {"patch_size": 5}
""",
    spec_usage="""```toml
[model]
name = "__NAME__"
params = { image_size = 32, width = 64 }
```
""",
)

DATASET = KindTemplate(
    kind="dataset",
    hook="register_datasets",
    register_type="DatasetRegister",
    summary="A classification set from one folder of class folders of images, split into train and test by a share.",
    dependencies=("pillow",),
    params='''from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fomo_host.api import Role, UserPath, checks_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class Params(BaseModel):
    """Settings of the dataset (``data.sources.N.params``)."""

    model_config = ConfigDict(extra="forbid")

    root: UserPath = Field(description="a folder holding one folder of images per class (the folder names the class)")
    name: str = Field(
        default="__NAME__",
        min_length=1,
        description="its name in the stream and the results",
    )
    role: Role = Field(default="adaptation", description="adaptation, pretraining or zero_shot")
    test_every: int = Field(default=5, ge=2, description="every n-th image of a class (sorted by file name) is a test image")
    templates: list[str] = Field(default=["a photo of a {}."], min_length=1, description="captions, '{}' for the class")

    @field_validator("templates")
    @classmethod
    def _a_slot_for_the_class(cls, templates: list[str]) -> list[str]:
        missing = [template for template in templates if "{}" not in template]
        if missing:
            raise ValueError(f"template {missing[0]!r} has no '{{}}' for the class name")
        return templates

    @field_validator("root")
    @classmethod
    def _class_folders_with_images(cls, root: UserPath, info: ValidationInfo) -> UserPath:
        if checks_files(info):  # not under `fomo-host validate --schema-only`, which checks a spec without the data
            if not root.is_dir():
                raise ValueError(f"{root} is not a folder")
            if not class_folders(root):
                raise ValueError(f"{root} holds no class folder with images ({', '.join(IMAGE_SUFFIXES)})")
        return root


def class_folders(root: UserPath) -> dict[str, list[UserPath]]:
    """Class name -> its image files, both sorted; folders without images are left out."""
    found = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        images = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        if images:
            found[folder.name] = images
    return found
''',
    component='''from pathlib import Path

import torch
from PIL import Image

from fomo_host.api import BuildContext, FomoError, ImageTextDataset, TensorSampleSet

from .params import Params, class_folders


def decode(path: Path, size: int) -> torch.Tensor:
    """An image file as uint8 ``[3, size, size]`` (RGB, resized with bicubic filtering)."""
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    except OSError as exc:
        raise FomoError(f"cannot read image {path}: {exc}") from None
    return torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def build(params: Params, context: BuildContext) -> list[ImageTextDataset]:
    size = context.image_size or 224
    folders = class_folders(params.root)
    classnames = list(folders)
    splits: dict[str, tuple[list[torch.Tensor], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, images in enumerate(folders.values()):
        for index, path in enumerate(images):
            split = "test" if index % params.test_every == params.test_every - 1 else "train"
            splits[split][0].append(decode(path, size))
            splits[split][1].append(label)

    def samples(split: str) -> TensorSampleSet | None:
        images, labels = splits[split]
        if not images:
            return None
        captions = [[template.format(classnames[label]) for template in params.templates] for label in labels]
        return TensorSampleSet(torch.stack(images), torch.tensor(labels, dtype=torch.long), captions)

    train = None if params.role == "zero_shot" else samples("train")
    test = None if params.role == "pretraining" else samples("test")
    where = f"{len(classnames)} classes from {params.root}"
    return [ImageTextDataset(params.name, params.role, "classification", classnames, params.templates, train, test, where)]
''',
    test="""from pathlib import Path
from typing import Any

from PIL import Image

from fomo_host.testing import DatasetConformance

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


class Test__CLASS__(DatasetConformance):
    dataset_name = "__NAME__"

    def params(self, tmp_path: Path) -> dict[str, Any]:
        for name, colour in COLOURS.items():
            (tmp_path / name).mkdir(parents=True)
            for index in range(6):
                shade = tuple(max(0, channel - 20 * index) for channel in colour)
                Image.new("RGB", (20 + index, 24), shade).save(tmp_path / name / f"{index}.png")
        return {"root": str(tmp_path), "test_every": 3}

    def bad_path_params(self, tmp_path: Path) -> dict[str, Any] | None:
        return {"root": str(tmp_path / "no-such-folder")}
""",
    spec_usage="""```toml
[[data.sources]]
name = "__NAME__"
params = { root = "~/data/my-classes", name = "my-classes", test_every = 5 }
```
""",
)

ORDERING = KindTemplate(
    kind="ordering",
    hook="register_orderings",
    register_type="OrderingRegister",
    summary="The stream's concepts in alphabetical order of their class names (reverse = true reads it backwards).",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the ordering (``data.ordering.params``)."""

    model_config = ConfigDict(extra="forbid")

    reverse: bool = Field(default=False, description="Z to A instead of A to Z")
''',
    component='''from collections.abc import Sequence

from fomo_host.api import BuildContext, Concept

from .params import Params


class Alphabetical:
    """Sorts the concepts by class name (a whole dataset by its name), then by dataset; the host cuts the list into tasks."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(self, concepts: Sequence[Concept], num_tasks: int) -> list[Concept]:
        ordered = sorted(concepts, key=lambda concept: ((concept.classname or concept.dataset).lower(), concept.dataset))
        return ordered[::-1] if self.params.reverse else ordered


def build(params: Params, context: BuildContext) -> Alphabetical:
    return Alphabetical(params)
''',
    test="""from fomo_host.testing import OrderingConformance


class Test__CLASS__(OrderingConformance):
    ordering_name = "__NAME__"
    params = {"reverse": False}
    invalid_params = {"reverse": "sideways"}
""",
    spec_usage="""```toml
[data.ordering]
name = "__NAME__"
params = { reverse = true }
```
""",
)

METRIC = KindTemplate(
    kind="metric",
    hook="register_metrics",
    register_type="MetricRegister",
    summary="Zero-shot top-k accuracy on classification sets: each image against every class's mean template embedding.",
    params='''from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Settings of the metric (``evaluation.metrics.N.params``)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=1, ge=1, description="an image counts as right when its class is among the k best scored")
''',
    component='''import torch
import torch.nn.functional as F

from fomo_host.api import EvaluationContext, ImageTextDataset, Metric, ModelBundle, prepare_images

from .params import Params


class TopKAccuracy(Metric):
    """The share of test images whose class is among the ``k`` classes closest to the image (CLIP's zero-shot
    classifier: a class is the normalised mean of its templates' text embeddings)."""

    def __init__(self, params: Params) -> None:
        self.k = params.k
        self.primary = f"top{params.k}"

    def applies_to(self, dataset: ImageTextDataset) -> bool:
        return dataset.task == "classification"

    def __call__(self, bundle: ModelBundle, dataset: ImageTextDataset, context: EvaluationContext) -> dict[str, float]:
        assert dataset.test is not None, "a classification set to evaluate has a test split"
        indices = context.subset if context.subset is not None else torch.arange(len(dataset.test))
        prompts = [template.format(name) for name in dataset.classnames for template in dataset.templates]
        k = min(self.k, len(dataset.classnames))
        correct = 0
        with torch.no_grad(), context.autocast():
            tokens = bundle.tokenizer(prompts).to(context.device)
            texts = bundle.model.encode_text(tokens, normalize=True).float()
            classes = F.normalize(texts.view(len(dataset.classnames), len(dataset.templates), -1).mean(dim=1), dim=-1)
            for chunk in torch.split(indices, context.batch_size):
                images = prepare_images(bundle, dataset.test.images(chunk), context.device)
                features = bundle.model.encode_image(images, normalize=True).float()
                best = (features @ classes.T).topk(k, dim=1).indices.cpu()
                correct += int((best == dataset.test.labels[chunk].unsqueeze(1)).any(dim=1).sum())
        return {self.primary: correct / max(len(indices), 1)}


def build(params: Params) -> TopKAccuracy:
    return TopKAccuracy(params)
''',
    test="""from fomo_host.testing import MetricConformance


class Test__CLASS__(MetricConformance):
    metric_name = "__NAME__"
    params = {"k": 1}
    invalid_params = {"k": 0}
    task_types = ("classification",)
""",
    spec_usage="""```toml
[[evaluation.metrics]]
name = "__NAME__"
params = { k = 5 }
```
""",
)
