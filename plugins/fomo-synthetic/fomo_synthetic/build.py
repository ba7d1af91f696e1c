"""Builds the synthetic datasets: which sets exist, how big they are, and an on-disk cache.

The catalogue has one pretraining pool (base concepts of several domains in the
canonical style), adaptation sets (new concepts and new domains: the stream) and
zero-shot sets (the pool's concepts in other styles: retention). Generation is
deterministic given the parameters and the run's seed: every split draws from
its own random stream, derived from the seed and the dataset's name, so
selecting a subset of sets or resizing one leaves the others unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import PIL
import torch

from fomo_host.api import BuildContext, ImageTextDataset, Role, TaskType, TensorSampleSet

from .domains import (
    ARROWS,
    COUNTS,
    DIGITS,
    FLAGS,
    GENERIC_CLASS_TEMPLATES,
    LETTERS,
    RELATIONS_DOMAIN,
    SHAPES,
    SWATCHES,
    TEXTURES,
    ConceptSpec,
    Domain,
)
from .params import DEFAULT_ADAPTATION, DEFAULT_LETTERS, DEFAULT_ZERO_SHOT, NAME_PREFIX, SyntheticParams

GENERATOR_VERSION = "1"
"""Bump when generation changes in a way the source hash would not catch (it catches edits to this package)."""
DEFAULT_IMAGE_SIZE = 32
Split = Literal["train", "test", "validation"]
SPLIT_STREAMS = {"train": 0, "test": 1, "validation": 2}


# ----------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Part:
    """Some concepts of one domain, drawn in one style."""

    domain: Domain
    concepts: tuple[ConceptSpec, ...]
    style: str = "canonical"


@dataclass(frozen=True)
class DatasetPlan:
    """What one dataset holds before it is drawn."""

    key: str
    role: Role
    task: TaskType
    parts: tuple[Part, ...]
    templates: tuple[str, ...]
    description: str

    @property
    def name(self) -> str:
        return NAME_PREFIX + self.key

    @property
    def classnames(self) -> list[str]:
        return [concept.classname for part in self.parts for concept in part.concepts]

    @property
    def splits(self) -> tuple[Split, ...]:
        return ("test",) if self.role == "zero_shot" else ("train", "test")


def _classification(key: str, role: Role, domain: Domain, concepts: tuple[ConceptSpec, ...], style: str, description: str) -> DatasetPlan:
    parts = (Part(domain, concepts, style),)
    return DatasetPlan(key, role, "classification", parts, domain.class_templates, description)


POOL = DatasetPlan(
    key="pool",
    role="pretraining",
    task="classification",
    parts=tuple(Part(domain, domain.base) for domain in (SHAPES, SWATCHES, DIGITS, TEXTURES)),
    templates=GENERIC_CLASS_TEMPLATES,
    description="base concepts in the canonical style: 4 shapes x 4 colours, 4 colour swatches, digits 0-4, 4 textures",
)

ADAPTATION_PLANS: dict[str, DatasetPlan] = {
    plan.key: plan
    for plan in (
        _classification(
            "shapes-new", "adaptation", SHAPES, SHAPES.new, "canonical", "new shapes (star, heart, crescent, diamond) in the base colours"
        ),
        _classification(
            "colours-new", "adaptation", SWATCHES, SWATCHES.new, "canonical", "swatches of new colours (purple, orange, pink, cyan, brown)"
        ),
        _classification("digits-new", "adaptation", DIGITS, DIGITS.new, "canonical", "digits 5-9"),
        _classification(
            "textures-new",
            "adaptation",
            TEXTURES,
            TEXTURES.new,
            "canonical",
            "new patterns (diagonal stripes, grid, zigzag, concentric rings)",
        ),
        _classification("letters", "adaptation", LETTERS, LETTERS.new, "canonical", "capital letters A-H"),
        _classification("counts", "adaptation", COUNTS, COUNTS.new, "canonical", "one to six dots"),
        _classification("arrows", "adaptation", ARROWS, ARROWS.new, "canonical", "arrows in eight directions"),
        _classification("flags", "adaptation", FLAGS, FLAGS.new, "canonical", "tricolour flags, horizontal or vertical stripes"),
        DatasetPlan(
            "relations",
            "adaptation",
            "retrieval",
            (Part(RELATIONS_DOMAIN, ()),),
            (),
            "two base shapes left of, right of, above or below each other; one caption per test image",
        ),
    )
}

ZERO_SHOT_PLANS: dict[str, DatasetPlan] = {
    plan.key: plan
    for plan in (
        _classification("shapes-outline", "zero_shot", SHAPES, SHAPES.base, "outline", "the pool's shapes drawn as outlines"),
        _classification(
            "shapes-clutter",
            "zero_shot",
            SHAPES,
            SHAPES.base,
            "clutter",
            "the pool's shapes on noisy, gradient or textured grey backgrounds, anywhere in the image",
        ),
        _classification(
            "colours-noisy", "zero_shot", SWATCHES, SWATCHES.base, "noisy", "the pool's colours as washed-out, grainy patches on grey noise"
        ),
        _classification(
            "digits-rotated", "zero_shot", DIGITS, DIGITS.base, "rotated", "digits 0-4 smaller, bolder and tilted 15-30 degrees"
        ),
        _classification(
            "textures-shifted", "zero_shot", TEXTURES, TEXTURES.base, "shifted", "the pool's patterns finer or coarser, tilted, on grey"
        ),
        DatasetPlan(
            "pool-heldout",
            "zero_shot",
            "classification",
            POOL.parts,
            POOL.templates,
            "new images of all 29 pool concepts in the pool's own style, classified among all 29 (held out: never trained on)",
        ),
    )
}


POOL_STYLES = DatasetPlan(
    key="pool-styles",
    role="pretraining",
    task="classification",
    parts=tuple(
        part
        for key in ("shapes-outline", "shapes-clutter", "colours-noisy", "digits-rotated", "textures-shifted")
        for part in ZERO_SHOT_PLANS[key].parts
    ),
    templates=GENERIC_CLASS_TEMPLATES,
    description="the pool's concepts in the five other styles of the zero-shot sets (outline, clutter, noisy, rotated, "
    "shifted): pretraining data of a broader base model, for model.warm_start.data",
)


def letters_plan(count: int) -> DatasetPlan:
    """The letters set with the first ``count`` capital letters (A-H by default, up to A-Z)."""
    if count == DEFAULT_LETTERS:
        return ADAPTATION_PLANS["letters"]
    domain = replace(LETTERS, new=tuple(ConceptSpec(f"letter {c}", {"glyph": c}) for c in string.ascii_uppercase[:count]))
    first, last = string.ascii_uppercase[0], string.ascii_uppercase[count - 1]
    return _classification("letters", "adaptation", domain, domain.new, "canonical", f"capital letters {first}-{last}")


def selected_plans(params: SyntheticParams) -> list[DatasetPlan]:
    """The pool, then the chosen adaptation and zero-shot sets in catalogue order."""
    adaptation = params.adaptation if params.adaptation is not None else DEFAULT_ADAPTATION
    zero_shot = params.zero_shot if params.zero_shot is not None else DEFAULT_ZERO_SHOT
    return (
        [POOL]
        + ([POOL_STYLES] if params.pretraining_styles else [])
        + [letters_plan(params.letters) if key == "letters" else plan for key, plan in ADAPTATION_PLANS.items() if key in adaptation]
        + [plan for key, plan in ZERO_SHOT_PLANS.items() if key in zero_shot]
    )


# ----------------------------------------------------------------------------- generation


@dataclass
class SplitArrays:
    """A generated split before it becomes a :class:`TensorSampleSet`."""

    images: torch.Tensor
    labels: torch.Tensor
    captions: list[list[str]]

    def to_sample_set(self) -> TensorSampleSet:
        return TensorSampleSet(self.images, self.labels, self.captions)


def split_rng(seed: int, plan: DatasetPlan, split: Split) -> np.random.Generator:
    """The random stream of one split: depends on the seed, the set's name and the split only."""
    return np.random.default_rng([seed % 2**64, zlib.crc32(plan.name.encode()), SPLIT_STREAMS[split]])


def generate_split(plan: DatasetPlan, split: Split, params: SyntheticParams, seed: int, image_size: int) -> SplitArrays:
    """Draw every sample of one split, then shuffle so any prefix is a fair mix of classes."""
    rng = split_rng(seed, plan, split)
    held_out = split != "train"
    images: list[np.ndarray] = []
    labels: list[int] = []
    captions: list[list[str]] = []
    if plan.task == "retrieval":
        (part,) = plan.parts
        for _ in range(params.retrieval_train if split == "train" else params.retrieval_test):  # validation: as large as test
            image, fields = part.domain.sample(None, part.style, rng, image_size)
            images.append(image)
            labels.append(-1)
            captions.append(
                [part.domain.canonical_caption(None, fields)]
                if held_out
                else part.domain.captions(None, fields, rng, params.captions_per_sample)
            )
    else:
        test_per_class = params.test_per_class
        if plan.role == "zero_shot" and params.zero_shot_test_per_class is not None:
            test_per_class = params.zero_shot_test_per_class
        per_class = (
            test_per_class
            if split == "test"
            else params.validation_per_class
            if split == "validation"
            else (params.pool_train_per_class if plan.role == "pretraining" else params.train_per_class)
        )
        label = 0
        for part in plan.parts:
            for concept in part.concepts:
                for _ in range(per_class):
                    image, fields = part.domain.sample(concept, part.style, rng, image_size)
                    images.append(image)
                    labels.append(label)
                    captions.append(part.domain.captions(concept, fields, rng, params.captions_per_sample))
                label += 1
    order = rng.permutation(len(images))
    return SplitArrays(
        images=torch.from_numpy(np.stack([images[i] for i in order])),
        labels=torch.tensor([labels[i] for i in order], dtype=torch.int64),
        captions=[captions[i] for i in order],
    )


def generate_all(plans: list[DatasetPlan], params: SyntheticParams, seed: int, image_size: int) -> dict[str, dict[str, SplitArrays]]:
    """Every split of every planned set, by set name then split."""
    splits: tuple[Split, ...] = ("validation",) if params.validation_per_class else ()
    return {
        plan.name: {split: generate_split(plan, split, params, seed, image_size) for split in (*plan.splits, *splits)} for plan in plans
    }


# ----------------------------------------------------------------------------- cache


def code_fingerprint() -> str:
    """A hash of this package's generating code and the libraries whose output it depends on."""
    digest = hashlib.sha256(GENERATOR_VERSION.encode())
    for module_file in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module_file.name.encode())
        digest.update(module_file.read_bytes())
    digest.update(f"pillow {PIL.__version__} numpy {np.__version__}".encode())
    return digest.hexdigest()


def cache_key(params: SyntheticParams, seed: int, image_size: int) -> str:
    """The content hash naming a cache entry: parameters, seed, size and code."""
    payload = {
        "params": params.model_dump(mode="json", exclude={"cache", "image_size"}),
        "seed": seed,
        "image_size": image_size,
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _save(path: Path, arrays: dict[str, dict[str, SplitArrays]]) -> None:
    """Write the cache entry atomically (a crash never leaves a half-written file under the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        name: {split: {"images": a.images, "labels": a.labels, "captions": a.captions} for split, a in splits.items()}
        for name, splits in arrays.items()
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache entry is ordinary data
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _load(path: Path) -> dict[str, dict[str, SplitArrays]] | None:
    """Read a cache entry, or None when it is missing or unreadable (then it is regenerated)."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, weights_only=True)
        return {name: {split: SplitArrays(**fields) for split, fields in splits.items()} for name, splits in payload.items()}
    except Exception:  # a corrupt or foreign file: regenerate rather than fail the run
        return None


def load_or_generate(
    plans: list[DatasetPlan], params: SyntheticParams, seed: int, image_size: int, cache_dir: Path | None
) -> dict[str, dict[str, SplitArrays]]:
    """The generated splits, from the cache when an entry for exactly these inputs exists."""
    path = None
    if params.cache and cache_dir is not None:
        path = Path(cache_dir) / "fomo-synthetic" / f"{cache_key(params, seed, image_size)}.pt"
        cached = _load(path)
        if cached is not None and all(plan.name in cached for plan in plans):
            return cached
    arrays = generate_all(plans, params, seed, image_size)
    if path is not None:
        _save(path, arrays)
    return arrays


# ----------------------------------------------------------------------------- factory


def build_synthetic_datasets(params: SyntheticParams, context: BuildContext) -> list[ImageTextDataset]:
    """Procedurally drawn image-text data in nine domains: a pretraining pool, adaptation and zero-shot sets."""
    image_size = params.image_size or context.image_size or DEFAULT_IMAGE_SIZE
    seed = context.seed + params.seed_offset
    plans = selected_plans(params)
    arrays = load_or_generate(plans, params, seed, image_size, context.cache_dir)
    datasets = []
    for plan in plans:
        splits = arrays[plan.name]
        datasets.append(
            ImageTextDataset(
                name=plan.name,
                role=plan.role,
                task=plan.task,
                classnames=plan.classnames,
                templates=list(plan.templates),
                train=splits["train"].to_sample_set() if "train" in splits else None,
                test=splits["test"].to_sample_set(),
                validation=splits["validation"].to_sample_set() if "validation" in splits else None,
                description=plan.description,
                info={
                    "generator": "fomo-synthetic",
                    "domains": [part.domain.key for part in plan.parts],
                    "style": plan.parts[0].style,
                    "image_size": image_size,
                    **({"validation": {"per_class": params.validation_per_class}} if "validation" in splits else {}),
                },
            )
        )
    return datasets
