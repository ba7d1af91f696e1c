"""A study's ``[finding]`` table: the claim a study tests, stated before it runs, as checkable comparisons.

::

    [finding]
    title = "Update methods"
    paper = "Parameter-efficient updates retain more zero-shot skill than full fine-tuning and learn less"
    against = "finetune"                      # the reference point of every claim that names no other
    claims = [
      { point = "lora", metric = "A_ZS.final", direction = "higher" },
      { point = "lora", metric = "A_KA.final", direction = "lower" },
      { point = "random", metric = "GM.final", direction = "within", margin = 0.02, against = "easy-to-hard" },
    ]

A claim compares one point of the study with another, seed by seed (same seed: same base model and data
order), on one number of each run's ``summary.json`` (a dotted path). ``fomo-host findings`` judges every
claim with a paired t-test whose p-values are corrected over the finding's claims (Holm by default):
``higher``/``lower`` holds where the difference is shown in that direction; ``within`` (an equivalence
claim: the two points do not differ by more than ``margin``) holds where both one-sided tests against
``-margin`` and ``+margin`` reject (TOST). The finding is *reproduced* where every claim holds,
*contradicted* where any claim is shown the other way, and *not shown* otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..spec import StrictModel


class Claim(StrictModel):
    """One comparison: ``point`` minus ``against`` on ``metric``, in the stated direction."""

    point: str = Field(min_length=1)
    metric: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
    """A dotted path into each run's summary.json, e.g. ``A_ZS.final``, ``GM.mean``, ``forgetting.adaptation_mean``."""
    direction: Literal["higher", "lower", "within"]
    against: str | None = Field(default=None, min_length=1)
    """The reference point; default: the finding's ``against``."""
    margin: float | None = Field(default=None, gt=0)
    """``within`` only: the largest difference, either way, that counts as no difference."""

    @model_validator(mode="after")
    def _margin_only_for_within(self) -> Claim:
        if self.direction == "within" and self.margin is None:
            raise ValueError(f"claim {self.point!r} {self.metric}: direction 'within' needs a margin (the largest difference that is none)")
        if self.direction != "within" and self.margin is not None:
            raise ValueError(f"claim {self.point!r} {self.metric}: a margin belongs to direction 'within' only")
        return self

    def describe(self, against: str) -> str:
        if self.direction == "within":
            return f"{self.point} within ±{self.margin:g} of {against} on {self.metric}"
        return f"{self.point} {self.direction} than {against} on {self.metric}"


class Finding(StrictModel):
    """What the study tests: the paper's claim in words and the comparisons that check it."""

    title: str = Field(min_length=1, max_length=80)
    paper: str = Field(min_length=1)
    """The claim as the paper makes it, in words."""
    against: str | None = Field(default=None, min_length=1)
    claims: list[Claim] = Field(min_length=1)
    correction: Literal["holm", "bh", "none"] = "holm"
    """How the claims' p-values are corrected for their number: Holm (family-wise error), Benjamini-Hochberg or none."""

    @model_validator(mode="after")
    def _every_claim_has_a_reference(self) -> Finding:
        for position, claim in enumerate(self.claims):
            reference = claim.against or self.against
            if reference is None:
                raise ValueError(f"claims.{position}: no reference point; give the claim's against or the finding's")
            if reference == claim.point:
                raise ValueError(f"claims.{position}: {claim.point!r} is compared with itself")
        return self

    def reference(self, claim: Claim) -> str:
        reference = claim.against or self.against
        assert reference is not None  # checked at validation
        return reference
