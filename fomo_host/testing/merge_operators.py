"""Conformance tests for merge operators: subclass :class:`MergeOperatorConformance` in your plugin's tests.

::

    from fomo_host.testing import MergeOperatorConformance

    class TestMyOperator(MergeOperatorConformance):
        operator_name = "my-operator"
        params = {"lambda": 0.5}

A subclass gets: the params validate; the merge has the base's keys, shapes and dtypes
and finite values; its inputs are never modified nor aliased; it is deterministic;
integer buffers come from the newest model; models equal to the base merge to the base;
models read lazily (one at a time, as a merger's history on disk is) give the result of
models in memory; and an operator that ``takes_weights`` returns a model that all the
weight is put on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, overload

import pytest
import torch
from pydantic import ValidationError

from ..components import MergeOperator, StateDict
from ..params import MergeOperatorParams
from .helpers import build_component, validate_params


def base_weights(seed: int = 0) -> StateDict:
    """Weights shaped like a tiny CLIP's: block matrices of both towers, a vector, the temperature, an integer buffer."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "visual.transformer.resblocks.0.attn.in_proj_weight": torch.randn(6, 4, generator=generator),
        "visual.transformer.resblocks.1.mlp.c_fc.weight": torch.randn(4, 4, generator=generator),
        "transformer.resblocks.0.ln_1.bias": torch.randn(4, generator=generator),
        "text_projection": torch.randn(4, 3, generator=generator),
        "logit_scale": torch.tensor(2.5),
        "attn_mask_positions": torch.arange(5),
    }


def finetuned_weights(base: StateDict, index: int) -> StateDict:
    """The base moved by a task vector of its own (integer buffers changed too, to see where they come from)."""
    generator = torch.Generator().manual_seed(100 + index)
    return {
        key: tensor + 0.3 * torch.randn(tensor.shape, generator=generator) if tensor.is_floating_point() else tensor + 10 * (index + 1)
        for key, tensor in base.items()
    }


class LazySequence(Sequence[StateDict]):
    """Models that are copied out on every access, as a merger's history on disk is read: nothing is shared between accesses."""

    def __init__(self, models: list[StateDict]) -> None:
        self.models = models
        self.accesses = 0

    def __len__(self) -> int:
        return len(self.models)

    @overload
    def __getitem__(self, index: int) -> StateDict: ...

    @overload
    def __getitem__(self, index: slice) -> list[StateDict]: ...

    def __getitem__(self, index: int | slice) -> StateDict | list[StateDict]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        self.accesses += 1
        return {key: tensor.clone() for key, tensor in self.models[index].items()}

    def __iter__(self) -> Iterator[StateDict]:
        for index in range(len(self)):
            yield self[index]


class MergeOperatorConformance:
    """The conformance suite of the ``merge_operator`` kind; set the class attributes in a subclass."""

    pytestmark = [pytest.mark.fomo_conformance]

    operator_name: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}
    invalid_params: ClassVar[dict[str, Any] | None] = None
    """A params table the operator must reject (None: only the unknown-key check)."""
    tolerance: ClassVar[float] = 1e-5

    def operator(self) -> MergeOperator:
        operator: MergeOperator = build_component("merge_operator", self.operator_name, self.params)
        return operator

    def traits(self) -> type[MergeOperatorParams]:
        return type(validate_params("merge_operator", self.operator_name, self.params))  # type: ignore[return-value]

    def models(self, base: StateDict) -> list[StateDict]:
        most = self.traits().max_models
        return [finetuned_weights(base, index) for index in range(3 if most is None else min(3, most))]

    def weights(self, count: int) -> list[float] | None:
        return [1 / count] * count if self.traits().takes_weights else None

    def merge(self, base: StateDict, models: Sequence[StateDict]) -> StateDict:
        with torch.no_grad():
            return self.operator()(base, models, self.weights(len(models)), list(range(len(models))))

    def test_params_validate_and_reject_bad_values(self) -> None:
        assert issubclass(self.traits(), MergeOperatorParams)
        with pytest.raises(ValidationError):
            validate_params("merge_operator", self.operator_name, {**self.params, "no_such_option": 1})
        if self.invalid_params is not None:
            with pytest.raises(ValidationError):
                validate_params("merge_operator", self.operator_name, {**self.params, **self.invalid_params})

    def test_the_merge_has_the_bases_keys_shapes_and_dtypes(self) -> None:
        base = base_weights()
        merged = self.merge(base, self.models(base))
        assert set(merged) == set(base)
        for key, tensor in base.items():
            assert merged[key].shape == tensor.shape and merged[key].dtype == tensor.dtype, key
            if tensor.is_floating_point():
                assert torch.isfinite(merged[key]).all(), key

    def test_inputs_are_never_modified_nor_aliased(self) -> None:
        base = base_weights()
        models = self.models(base)
        copies = [{key: tensor.clone() for key, tensor in model.items()} for model in [base, *models]]
        merged = self.merge(base, models)
        for original, copy in zip([base, *models], copies, strict=True):
            assert all(torch.equal(original[key], copy[key]) for key in copy), "an input was modified"
        pointers = {tensor.data_ptr() for model in [base, *models] for tensor in model.values()}
        assert not any(tensor.data_ptr() in pointers for tensor in merged.values()), "the merge shares memory with an input"

    def test_deterministic(self) -> None:
        base = base_weights()
        first, second = self.merge(base, self.models(base)), self.merge(base, self.models(base))
        assert all(torch.equal(first[key], second[key]) for key in base)

    def test_integer_buffers_come_from_the_newest_model(self) -> None:
        base = base_weights()
        models = self.models(base)
        merged = self.merge(base, models)
        assert torch.equal(merged["attn_mask_positions"], models[-1]["attn_mask_positions"])

    def test_models_equal_to_the_base_merge_to_the_base(self) -> None:
        base = base_weights()
        copies = [{key: tensor.clone() for key, tensor in base.items()} for _ in self.models(base)]
        merged = self.merge(base, copies)
        for key, tensor in base.items():
            torch.testing.assert_close(merged[key], tensor, atol=self.tolerance, rtol=self.tolerance, msg=key)

    def test_models_read_lazily_merge_as_models_in_memory(self) -> None:
        base = base_weights()
        models = self.models(base)
        lazy = LazySequence(models)
        in_memory, from_lazy = self.merge(base, models), self.merge(base, lazy)
        assert lazy.accesses >= len(models)
        for key in base:
            torch.testing.assert_close(from_lazy[key], in_memory[key], atol=self.tolerance, rtol=self.tolerance, msg=key)

    def test_all_weight_on_one_model_gives_that_model(self) -> None:
        if not self.traits().takes_weights:
            pytest.skip("the operator takes no per-model weights")
        base = base_weights()
        models = self.models(base)
        for chosen in range(len(models)):
            weights = [1.0 if index == chosen else 0.0 for index in range(len(models))]
            with torch.no_grad():
                merged = self.operator()(base, models, weights, list(range(len(models))))
            for key, tensor in base.items():
                if tensor.is_floating_point():
                    torch.testing.assert_close(merged[key], models[chosen][key], atol=self.tolerance, rtol=self.tolerance, msg=key)
