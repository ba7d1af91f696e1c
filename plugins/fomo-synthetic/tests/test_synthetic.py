"""Tests of the synthetic datasets: contract, determinism, vocabulary, parameters, cache and hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fomo_synthetic.build import ADAPTATION_PLANS, POOL, ZERO_SHOT_PLANS, build_synthetic_datasets, cache_key
from fomo_synthetic.domains import DOMAINS, LETTERS
from fomo_synthetic.params import ADAPTATION_SETS, DEFAULT_LETTERS, ZERO_SHOT_SETS, SyntheticParams
from pydantic import ValidationError

from fomo_host.api import BuildContext, Concept, ImageTextDataset

SMALL = dict(pool_train_per_class=4, train_per_class=3, test_per_class=2, retrieval_train=8, retrieval_test=6)
"""Sizes small enough to build the whole catalogue in well under a second."""


def build(seed: int = 0, cache_dir: Path | None = None, context_image_size: int | None = None, **overrides: Any) -> list[ImageTextDataset]:
    """Build with small sizes; ``overrides`` are parameters, the other arguments the build context."""
    settings: dict[str, Any] = dict(SMALL, cache=cache_dir is not None) | overrides
    context = BuildContext(seed=seed, cache_dir=cache_dir or Path("/nonexistent"), image_size=context_image_size)
    return build_synthetic_datasets(SyntheticParams(**settings), context)


@pytest.fixture(scope="module")
def datasets() -> list[ImageTextDataset]:
    return build()


def by_role(datasets: list[ImageTextDataset], role: str) -> list[ImageTextDataset]:
    return [dataset for dataset in datasets if dataset.role == role]


def splits(dataset: ImageTextDataset) -> list[Any]:
    return [split for split in (dataset.train, dataset.test) if split is not None]


# ----------------------------------------------------------------------------- structure


def test_roles_and_tasks(datasets: list[ImageTextDataset]) -> None:
    (pool,) = by_role(datasets, "pretraining")
    assert pool.name == "synthetic-pool" and pool.train is not None and pool.test is not None
    adaptation = by_role(datasets, "adaptation")
    assert sum(d.task == "classification" for d in adaptation) >= 5
    assert any(d.task == "retrieval" for d in adaptation)
    assert all(d.train is not None and d.test is not None for d in adaptation)
    zero_shot = by_role(datasets, "zero_shot")
    assert len(zero_shot) >= 3
    assert all(d.train is None and d.test is not None and d.task == "classification" for d in zero_shot)
    assert len({d.name for d in datasets}) == len(datasets)


def test_at_least_eight_domains(datasets: list[ImageTextDataset]) -> None:
    used = {domain for dataset in datasets for domain in dataset.info["domains"]}  # type: ignore[union-attr]
    assert len(used) >= 8
    assert used <= set(DOMAINS)


def test_images_labels_and_captions_have_the_contract_shapes(datasets: list[ImageTextDataset]) -> None:
    for dataset in datasets:
        for split in splits(dataset):
            n = len(split)
            assert n > 0
            images = split.images(torch.arange(n))
            assert images.dtype == torch.uint8 and images.shape == (n, 3, 32, 32)
            assert split.labels.dtype == torch.int64 and split.labels.shape == (n,)
            assert all(isinstance(c, str) and c for c in split.captions(torch.arange(n)))
            if dataset.task == "classification":
                assert split.labels.min() >= 0 and split.labels.max() < len(dataset.classnames)
                assert set(split.labels.tolist()) == set(range(len(dataset.classnames)))
            else:
                assert (split.labels == -1).all()


def test_sizes_follow_the_parameters(datasets: list[ImageTextDataset]) -> None:
    for dataset in datasets:
        classes = len(dataset.classnames)
        if dataset.task == "retrieval":
            assert dataset.train is not None and dataset.test is not None
            assert (len(dataset.train), len(dataset.test)) == (SMALL["retrieval_train"], SMALL["retrieval_test"])
            continue
        assert dataset.test is not None and len(dataset.test) == classes * SMALL["test_per_class"]
        if dataset.train is not None:
            per_class = SMALL["pool_train_per_class"] if dataset.role == "pretraining" else SMALL["train_per_class"]
            assert len(dataset.train) == classes * per_class


def test_image_size_comes_from_params_then_context_then_default() -> None:
    small = dict(adaptation=["letters"], zero_shot=[])
    assert build(**small)[0].test.images(torch.arange(1)).shape[-1] == 32  # type: ignore[union-attr]
    assert build(context_image_size=48, **small)[0].test.images(torch.arange(1)).shape[-1] == 48  # type: ignore[union-attr]
    sized = build(context_image_size=48, image_size=24, **small)
    assert all(s.images(torch.arange(1)).shape[-2:] == (24, 24) for d in sized for s in splits(d))


def test_classes_look_different(datasets: list[ImageTextDataset]) -> None:
    """No two classes of a set draw the same mean image (a drawing bug would make them collapse)."""
    for dataset in datasets:
        if dataset.task != "classification":
            continue
        split = dataset.test
        images = split.images(torch.arange(len(split))).float()  # type: ignore[union-attr]
        means = torch.stack([images[split.labels == k].mean(0) for k in range(len(dataset.classnames))])  # type: ignore[union-attr]
        distances = torch.cdist(means.flatten(1), means.flatten(1)) + torch.eye(len(means)) * 1e9
        assert distances.min() > 1.0, dataset.name


# ----------------------------------------------------------------------------- determinism


def flat(datasets: list[ImageTextDataset]) -> list[tuple[str, torch.Tensor, torch.Tensor, list[list[str]]]]:
    return [(d.name, s.image_tensor, s.labels, s.caption_choices) for d in datasets for s in splits(d)]


def assert_same(first: list[ImageTextDataset], second: list[ImageTextDataset]) -> None:
    for (name_a, images_a, labels_a, captions_a), (name_b, images_b, labels_b, captions_b) in zip(flat(first), flat(second), strict=True):
        assert name_a == name_b
        assert torch.equal(images_a, images_b) and torch.equal(labels_a, labels_b) and captions_a == captions_b


def test_same_seed_gives_identical_data(datasets: list[ImageTextDataset]) -> None:
    assert_same(datasets, build(seed=0))


@pytest.mark.parametrize("other", [dict(seed=1), dict(seed=0, seed_offset=5)])
def test_another_seed_gives_other_data(datasets: list[ImageTextDataset], other: dict[str, int]) -> None:
    for (name, images_a, _, _), (_, images_b, _, _) in zip(flat(datasets), flat(build(**other)), strict=True):
        assert not torch.equal(images_a, images_b), name


def test_selecting_sets_leaves_the_others_unchanged(datasets: list[ImageTextDataset]) -> None:
    subset = build(adaptation=["synthetic-arrows", "counts"], zero_shot=["digits-rotated"])
    expected = ["synthetic-pool", "synthetic-counts", "synthetic-arrows", "synthetic-digits-rotated"]
    assert [d.name for d in subset] == expected
    full = {d.name: d for d in datasets}
    for dataset in subset:
        for mine, theirs in zip(splits(dataset), splits(full[dataset.name]), strict=True):
            assert torch.equal(mine.image_tensor, theirs.image_tensor)


# ----------------------------------------------------------------------------- vocabulary and captions


def test_captions_contain_the_class_name(datasets: list[ImageTextDataset]) -> None:
    for dataset in datasets:
        if dataset.task != "classification":
            continue
        for split in splits(dataset):
            for label, choices in zip(split.labels.tolist(), split.caption_choices, strict=True):
                assert 1 <= len(choices) <= 3
                assert len(set(choices)) == len(choices)
                assert all(dataset.classnames[label] in caption for caption in choices), (dataset.name, choices)


def test_retrieval_test_images_have_one_caption_each(datasets: list[ImageTextDataset]) -> None:
    for dataset in datasets:
        if dataset.task == "retrieval":
            assert dataset.classnames == [] and dataset.test is not None
            assert all(len(choices) == 1 for choices in dataset.test.caption_choices)
            assert dataset.concepts() == [Concept(dataset.name, None)]


def test_templates_hold_a_placeholder(datasets: list[ImageTextDataset]) -> None:
    for dataset in datasets:
        if dataset.task == "classification":
            assert dataset.templates and all("{}" in template for template in dataset.templates)


def test_zero_shot_sets_reuse_pool_class_names(datasets: list[ImageTextDataset]) -> None:
    (pool,) = by_role(datasets, "pretraining")
    for dataset in by_role(datasets, "zero_shot"):
        assert set(dataset.classnames) <= set(pool.classnames), dataset.name


def test_adaptation_concepts_are_new(datasets: list[ImageTextDataset]) -> None:
    (pool,) = by_role(datasets, "pretraining")
    seen: set[str] = set()
    for dataset in by_role(datasets, "adaptation"):
        names = set(dataset.classnames)
        assert not names & set(pool.classnames), dataset.name
        assert not names & seen, dataset.name
        seen |= names
        if dataset.task == "classification":
            assert len(dataset.concepts()) == len(dataset.classnames)


def test_pool_covers_several_domains() -> None:
    assert len({part.domain.key for part in POOL.parts}) >= 4


def test_captions_fit_the_text_context() -> None:
    """Every caption template, with every field value a drawing produces, stays within 20 BPE tokens."""
    open_clip = pytest.importorskip("open_clip")
    tokenizer = open_clip.get_tokenizer("ViT-B-16", context_length=20)
    rng = np.random.default_rng(0)
    captions: set[str] = set()
    plans = [POOL, *ADAPTATION_PLANS.values(), *ZERO_SHOT_PLANS.values()]
    for plan in plans:
        for part in plan.parts:
            for concept in part.concepts or (None,):
                for _ in range(25 if concept is None else 6):
                    _, fields = part.domain.sample(concept, part.style, rng, 16)
                    values = dict(fields, name=concept.classname if concept else "")
                    captions |= {template.format(**values) for template in part.domain.caption_templates}
        captions |= {template.format(name) for template in plan.templates for name in plan.classnames}
    lengths = {caption: len(tokenizer.encode(caption)) + 2 for caption in captions}  # + start and end tokens
    longest = max(lengths, key=lengths.__getitem__)
    assert lengths[longest] <= 20, (longest, lengths[longest])


# ----------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    "bad",
    [
        dict(train_per_class=0),
        dict(test_per_class=-3),
        dict(pool_train_per_class=0),
        dict(image_size=4),
        dict(captions_per_sample=0),
        dict(captions_per_sample=9),
        dict(retrieval_test=2),
        dict(seed_offset=-1),
        dict(adaptation=[]),
        dict(adaptation=["letters", "letters"]),
        dict(adaptation=["no-such-set"]),
        dict(zero_shot=["shapes-new"]),
        dict(unknown_setting=1),
        dict(train_per_class="many"),
    ],
)
def test_params_reject_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SyntheticParams(**bad)


def test_params_defaults_and_prefixed_names() -> None:
    params = SyntheticParams()
    assert params.image_size is None and params.train_per_class >= 1 and params.adaptation is None
    assert SyntheticParams(adaptation=["synthetic-letters"]).adaptation == ["letters"]


# ----------------------------------------------------------------------------- cache


def test_cache_round_trip(tmp_path: Path) -> None:
    first = build(cache_dir=tmp_path, adaptation=["flags"], zero_shot=[])
    entries = list((tmp_path / "fomo-synthetic").glob("*.pt"))
    assert len(entries) == 1
    second = build(cache_dir=tmp_path, adaptation=["flags"], zero_shot=[])
    assert_same(first, second)
    entries[0].write_bytes(b"not a cache entry")
    assert_same(first, build(cache_dir=tmp_path, adaptation=["flags"], zero_shot=[]))


def test_cache_key_depends_on_what_changes_the_data() -> None:
    params = SyntheticParams(**SMALL)
    key = cache_key(params, 0, 32)
    assert key == cache_key(SyntheticParams(**SMALL, cache=False), 0, 32)
    assert key != cache_key(params, 1, 32)
    assert key != cache_key(params, 0, 64)
    assert key != cache_key(SyntheticParams(**(SMALL | dict(train_per_class=4))), 0, 32)


# ----------------------------------------------------------------------------- hook


def test_hook_registers_the_component() -> None:
    from fomo_synthetic import plugin

    calls: list[dict[str, Any]] = []
    plugin.register_datasets(register=lambda **kwargs: calls.append(kwargs))
    assert [(call["name"], call["factory"], call["params"]) for call in calls] == [
        ("synthetic", "fomo_synthetic.build:build_synthetic_datasets", SyntheticParams)
    ]
    assert calls[0]["description"]


def test_params_name_the_catalogues_sets() -> None:
    """The Params module lists the set names without importing the drawing code; they must match the catalogue."""
    assert tuple(ADAPTATION_PLANS) == ADAPTATION_SETS
    assert tuple(ZERO_SHOT_PLANS) == ZERO_SHOT_SETS
    assert len(LETTERS.new) == DEFAULT_LETTERS


# ----------------------------------------------------------------------------- options of the embedded benchmark


def test_defaults_build_the_quickstart_catalogue(datasets: list[ImageTextDataset]) -> None:
    """Options added for the embedded benchmark leave the default catalogue (the quickstart's data) as it was."""
    assert [d.name for d in datasets] == [
        "synthetic-pool",
        *(f"synthetic-{key}" for key in ADAPTATION_PLANS),
        *(f"synthetic-{key}" for key in ("shapes-outline", "shapes-clutter", "colours-noisy", "digits-rotated", "textures-shifted")),
    ]
    letters = next(d for d in datasets if d.name == "synthetic-letters")
    assert letters.classnames == [f"letter {c}" for c in "ABCDEFGH"]
    assert_same(
        datasets, build(letters=8, zero_shot=["shapes-outline", "shapes-clutter", "colours-noisy", "digits-rotated", "textures-shifted"])
    )


def test_letters_extend_from_a() -> None:
    letters = build(adaptation=["letters"], zero_shot=[], letters=26)[1]
    assert letters.classnames == [f"letter {chr(ord('A') + i)}" for i in range(26)]
    assert len(letters.test) == 26 * SMALL["test_per_class"]  # type: ignore[arg-type]
    assert build(adaptation=["letters"], zero_shot=[], letters=3)[1].classnames == ["letter A", "letter B", "letter C"]


def test_pool_heldout_is_new_images_of_every_pool_concept() -> None:
    pool, _, heldout = build(adaptation=["letters"], zero_shot=["pool-heldout"])
    assert heldout.role == "zero_shot" and heldout.train is None and heldout.classnames == pool.classnames
    assert heldout.templates == pool.templates
    assert len(heldout.test) == len(pool.classnames) * SMALL["test_per_class"]  # type: ignore[arg-type]
    pool_images = {bytes(image.numpy()) for split in (pool.train, pool.test) for image in split.image_tensor}  # type: ignore[union-attr]
    assert not any(bytes(image.numpy()) in pool_images for image in heldout.test.image_tensor)  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- a broader base's pretraining data


def test_pool_styles_hold_the_zero_shot_styles_for_pretraining_only(datasets: list[ImageTextDataset]) -> None:
    built = {d.name: d for d in build(pretraining_styles=True)}
    styles = built["synthetic-pool-styles"]
    assert styles.role == "pretraining" and styles.train is not None
    zero_shot = [d for d in datasets if d.role == "zero_shot" and d.name != "synthetic-pool-heldout"]
    # one class per (style, pool concept) of each style-shifted zero-shot set, in their order
    assert styles.classnames == [name for d in zero_shot for name in d.classnames]
    assert len(styles.train) == len(styles.classnames) * SMALL["pool_train_per_class"]
    # the training images are drawn apart from the zero-shot sets' test images, and the other sets are unchanged
    full = {d.name: d for d in datasets}
    for name, dataset in full.items():
        for mine, theirs in zip(splits(built[name]), splits(dataset), strict=True):
            assert torch.equal(mine.image_tensor, theirs.image_tensor)
    test_images = {bytes(image.numpy()) for d in zero_shot for image in d.test.image_tensor}  # type: ignore[union-attr]
    assert not any(bytes(image.numpy()) in test_images for image in styles.train.image_tensor)


def test_zero_shot_sets_can_be_larger_than_the_stream_sets() -> None:
    built = {d.name: d for d in build(zero_shot_test_per_class=5)}
    outline, letters = built["synthetic-shapes-outline"], built["synthetic-letters"]
    assert len(outline.test) == 5 * len(outline.classnames)  # type: ignore[arg-type]
    assert len(letters.test) == SMALL["test_per_class"] * len(letters.classnames)  # type: ignore[arg-type]
