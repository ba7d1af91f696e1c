"""The synthetic datasets' Params, and the names of the sets they select (no drawing code: registration imports this)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PREFIX = "synthetic-"
ADAPTATION_SETS: tuple[str, ...] = (
    "shapes-new",
    "colours-new",
    "digits-new",
    "textures-new",
    "letters",
    "counts",
    "arrows",
    "flags",
    "relations",
)
"""The adaptation sets of the catalogue (:mod:`fomo_synthetic.build`), in its order."""
ZERO_SHOT_SETS: tuple[str, ...] = (
    "shapes-outline",
    "shapes-clutter",
    "colours-noisy",
    "digits-rotated",
    "textures-shifted",
    "pool-heldout",
)
"""The zero-shot sets of the catalogue, in its order."""

DEFAULT_ADAPTATION = ADAPTATION_SETS
"""The adaptation sets built when ``adaptation`` is not given: all of them."""
DEFAULT_ZERO_SHOT = ("shapes-outline", "shapes-clutter", "colours-noisy", "digits-rotated", "textures-shifted")
"""The zero-shot sets built when ``zero_shot`` is not given: the style-shifted ones (``pool-heldout`` is asked for by name)."""
DEFAULT_LETTERS = 8
"""Capital letters in the letters set by default (A-H: the catalogue's letters domain)."""


class SyntheticParams(BaseModel):
    """Settings of the synthetic datasets (sizes, subsets, seed offset, cache)."""

    model_config = ConfigDict(extra="forbid")

    image_size: int | None = Field(None, ge=8, le=512, description="side in pixels; None: the model's, else 32")
    pool_train_per_class: int = Field(80, ge=1, le=10_000, description="training images per pool class")
    train_per_class: int = Field(40, ge=1, le=10_000, description="training images per adaptation class")
    test_per_class: int = Field(20, ge=1, le=10_000, description="test images per class, every set")
    zero_shot_test_per_class: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="test images per class of the zero-shot sets (a set of n images moves by 1/n per image, so a "
        "retention bound needs n large enough); None: test_per_class",
    )
    retrieval_train: int = Field(480, ge=1, le=100_000, description="training images of each retrieval set")
    retrieval_test: int = Field(200, ge=5, le=100_000, description="test images (and captions) of each retrieval set")
    validation_per_class: int = Field(
        0,
        ge=0,
        le=10_000,
        description="validation images per class of every set (retrieval sets: as many as their test split), drawn apart from "
        "train and test, for tuning; 0: no validation split",
    )
    pretraining_styles: bool = Field(
        False,
        description="also build synthetic-pool-styles: the pool's concepts in the zero-shot sets' five styles, "
        "pool_train_per_class images each, role pretraining (name it in model.warm_start.data to pretrain a broader base)",
    )
    captions_per_sample: int = Field(3, ge=1, le=5, description="alternative captions drawn per sample")
    letters: int = Field(DEFAULT_LETTERS, ge=1, le=26, description="capital letters in the letters set, from A (8: A-H)")
    seed_offset: int = Field(0, ge=0, description="added to the run's seed, to draw another sample of the data")
    adaptation: list[str] | None = Field(
        None, min_length=1, description=f"adaptation sets to build; None: all of {', '.join(DEFAULT_ADAPTATION)}"
    )
    zero_shot: list[str] | None = Field(
        None, description=f"zero-shot sets to build (any of {', '.join(ZERO_SHOT_SETS)}); None: {', '.join(DEFAULT_ZERO_SHOT)}"
    )
    cache: bool = Field(True, description="keep generated tensors under the run's cache directory")

    @field_validator("adaptation")
    @classmethod
    def _known_adaptation_sets(cls, keys: list[str] | None) -> list[str] | None:
        return _check_keys(keys, ADAPTATION_SETS, "adaptation")

    @field_validator("zero_shot")
    @classmethod
    def _known_zero_shot_sets(cls, keys: list[str] | None) -> list[str] | None:
        return _check_keys(keys, ZERO_SHOT_SETS, "zero-shot")


def _check_keys(keys: list[str] | None, known: tuple[str, ...], kind: str) -> list[str] | None:
    """Accept set keys with or without the ``synthetic-`` prefix; reject unknown or repeated ones."""
    if keys is None:
        return None
    normalised = [key.removeprefix(NAME_PREFIX) for key in keys]
    unknown = [key for key in normalised if key not in known]
    if unknown:
        raise ValueError(f"unknown {kind} set(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"{kind} sets listed twice")
    return normalised
