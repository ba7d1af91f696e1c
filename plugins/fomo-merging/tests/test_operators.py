"""Merge operators on small hand-made state dicts, against values worked out by hand."""

import math

import pytest
import torch
from fomo_merging import operators
from fomo_merging.operators import (
    block_depths,
    breadcrumbs,
    breadcrumbs_mask,
    dare,
    interpolate,
    lines,
    magmax,
    model_stock,
    slerp,
    task_arithmetic,
    ties,
)


def sd(**tensors):
    return {key.replace("__", "."): torch.tensor(value) for key, value in tensors.items()}


def approx(tensor, expected):
    assert tensor.tolist() == pytest.approx(expected, abs=1e-6)


# Six entries split over two tensors (so the TIES threshold must be global), on a base of ones.
BASE = {"a": torch.ones(4), "b": torch.ones(2), "steps": torch.tensor([7])}
TAUS = [
    [3.0, -1.0, 0.5, -2.0, 0.1, 2.5],
    [-4.0, 2.0, 0.2, 1.0, 0.3, 3.0],
    [1.5, -3.0, -0.4, 5.0, -0.2, -0.6],
]


def model(tau, steps):
    full = torch.ones(6) + torch.tensor(tau)
    return {"a": full[:4].clone(), "b": full[4:].clone(), "steps": torch.tensor([steps])}


MODELS = [model(tau, steps) for tau, steps in zip(TAUS, (10, 20, 30), strict=True)]


def flat(state):
    return torch.cat([state["a"], state["b"]]).tolist()


def test_interpolation_weighted_mean():
    merged = interpolate(BASE, MODELS, [0.2, 0.3, 0.5])
    # 1 + 0.2 tau1 + 0.3 tau2 + 0.5 tau3, entry 0: 1 + 0.6 - 1.2 + 0.75 = 1.15
    assert flat(merged) == pytest.approx([1.15, -0.1, 0.96, 3.4, 1.01, 2.10])
    assert merged["steps"].tolist() == [30]  # integer buffer from the newest model


def test_interpolation_uniform_by_default_and_wise_ft():
    assert flat(interpolate(BASE, MODELS)) == pytest.approx([1 + 0.5 / 3, 1 - 2 / 3, 1.1, 1 + 4 / 3, 1 + 0.2 / 3, 1 + 4.9 / 3])
    wise = interpolate(BASE, [BASE, MODELS[0]], [0.5, 0.5])  # WiSE-FT, alpha = 0.5
    assert flat(wise) == pytest.approx([2.5, 0.5, 1.25, 0.0, 1.05, 2.25])
    with pytest.raises(ValueError, match="sum to 1"):
        interpolate(BASE, MODELS, [0.5, 0.5, 0.5])


def test_task_arithmetic():
    merged = task_arithmetic(BASE, MODELS, scaling=0.5)
    # sum of taus: [0.5, -2, 0.3, 4, 0.2, 4.9]
    assert flat(merged) == pytest.approx([1.25, 0.0, 1.15, 3.0, 1.1, 3.45])


def test_ties_trims_per_tensor_by_default():
    # density 0.5: tensor a (4 entries) keeps int(0.5 * 4) = 2 entries of each task vector, tensor b (2) keeps 1
    #   tau1 -> a [3, 0, 0, -2], b [0, 2.5]; tau2 -> a [-4, 2, 0, 0], b [0, 3]; tau3 -> a [0, -3, 0, 5], b [0, -0.6]
    # sums a [-1, -1, 0, 3], b [0, 4.9] elect [-, -, +, +], [+, +] (an exact 0 elects +, as peft does)
    # agreeing means: a [-4, -3, nothing kept, 5], b [nothing kept, (2.5 + 3)/2]
    merged = ties(BASE, MODELS, density=0.5, scaling=1.0)
    assert flat(merged) == pytest.approx([1 - 4, 1 - 3, 1, 6, 1, 1 + 2.75])
    scaled = ties(BASE, MODELS, density=0.5, scaling=0.5)
    assert flat(scaled) == pytest.approx([1 - 2, 1 - 1.5, 1, 3.5, 1, 1 + 1.375])
    assert merged["steps"].tolist() == [30]


def test_ties_global_trim_keeps_the_largest_over_the_whole_task_vector():
    # density 0.5: each task vector keeps its int(0.5 * 6) = 3 largest |tau| over both tensors
    #   tau1 -> [3, 0, 0, -2, 0, 2.5]; tau2 -> [-4, 2, 0, 0, 0, 3]; tau3 -> [1.5, -3, 0, 5, 0, 0]
    # sums [0.5, -1, 0, 3, 0, 5.5] elect signs [+, -, +, +, +, +]
    # agreeing means: [(3 + 1.5)/2, -3, nothing kept, 5, nothing kept, (2.5 + 3)/2]
    merged = ties(BASE, MODELS, density=0.5, scaling=1.0, trim="global")
    assert flat(merged) == pytest.approx([1 + 2.25, 1 - 3, 1, 6, 1, 1 + 2.75])
    with pytest.raises(ValueError, match="unknown trim"):
        ties(BASE, MODELS, trim="layer")


def test_ties_keeps_exactly_int_density_n_entries_and_elects_plus_on_a_sign_tie():
    base = {"w": torch.zeros(4)}
    # equal magnitudes at the cut: exactly int(0.5 * 4) = 2 survive, the first in index order
    approx(ties(base, [{"w": torch.tensor([1.0, -1.0, 1.0, 0.5])}], density=0.5)["w"], [1.0, -1.0, 0.0, 0.0])
    # int(0.7 * 4) = 2 entries, not round(2.8) = 3
    approx(ties(base, [{"w": torch.tensor([4.0, 3.0, 2.0, 1.0])}], density=0.7)["w"], [4.0, 3.0, 0.0, 0.0])
    # +2 and -2 cancel: the sign election picks +1, so the entry takes +2 (the mean of the agreeing entries)
    approx(ties(base, [{"w": torch.tensor([2.0, 1.0, 0, 0])}, {"w": torch.tensor([-2.0, 3.0, 0, 0])}], density=1.0)["w"], [2.0, 2.0, 0, 0])
    # global: |tau| = [1, 0.5 | 1, 1], keep 2: the equal values are taken in key order, then index order
    two = {"a": torch.zeros(2), "b": torch.zeros(2)}
    merged = ties(two, [{"a": torch.tensor([1.0, 0.5]), "b": torch.tensor([-1.0, 1.0])}], density=0.5, trim="global")
    approx(merged["a"], [1.0, 0.0])
    approx(merged["b"], [-1.0, 0.0])


def test_ties_matches_peft_per_tensor():
    from peft.utils.merge_utils import ties as peft_ties

    generator = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(6, 5, generator=generator), "b": torch.randn(7, generator=generator)}
    models = [{key: value + torch.randn(value.shape, generator=generator) for key, value in base.items()} for _ in range(3)]
    merged = ties(base, models, density=0.4)
    for key in base:
        taus = [model[key] - base[key] for model in models]
        expected = base[key] + peft_ties(taus, torch.ones(3), density=0.4)
        torch.testing.assert_close(merged[key], expected)


def test_ties_full_density_is_sign_aware_mean():
    merged = ties(BASE, MODELS, density=1.0)
    # entry 2: [0.5, 0.2, -0.4] sum 0.3 (+) -> mean(0.5, 0.2) = 0.35
    assert flat(merged)[2] == pytest.approx(1.35)


def test_magmax_largest_magnitude_per_entry():
    merged = magmax(BASE, MODELS, scaling=1.0)
    assert flat(merged) == pytest.approx([1 - 4, 1 - 3, 1.5, 6, 1.3, 4])
    assert flat(magmax(BASE, MODELS, scaling=0.5)) == pytest.approx([-1, -0.5, 1.25, 3.5, 1.15, 2.5])


def test_slerp_orthogonal_and_collinear():
    base = sd(w=[0.0, 0.0])
    a, b = sd(w=[1.0, 0.0]), sd(w=[0.0, 1.0])  # 90 degrees apart
    approx(slerp(base, [a, b], [0.5, 0.5])["w"], [math.sqrt(0.5), math.sqrt(0.5)])
    # weights (0.25, 0.75): sin(pi/8), sin(3 pi/8)
    approx(slerp(base, [a, b], [0.25, 0.75])["w"], [0.382683, 0.923880])
    # collinear task vectors: linear interpolation
    approx(slerp(base, [sd(w=[1.0, 2.0]), sd(w=[2.0, 4.0])], [0.5, 0.5])["w"], [1.5, 3.0])
    # a zero task vector (one model is theta_0): linear as well
    approx(slerp(base, [base, a], [0.7, 0.3])["w"], [0.3, 0.0])


def test_slerp_is_relative_to_the_base():
    base = sd(w=[10.0, 10.0])
    approx(slerp(base, [sd(w=[11.0, 10.0]), sd(w=[10.0, 11.0])], [0.5, 0.5])["w"], [10 + math.sqrt(0.5)] * 2)


def test_model_stock_ratio_of_two_models():
    base = sd(w=[0.0, 0.0])
    # 60 degrees: cos 0.5 -> t = 2 * 0.5 / 1.5 = 2/3; centre (1.5, sqrt(3)/2)
    merged = model_stock(base, [sd(w=[2.0, 0.0]), sd(w=[1.0, math.sqrt(3)])])
    approx(merged["w"], [1.0, math.sqrt(3) / 3])
    # 45 degrees: cos 0.707107 -> t = 0.828427; centre (1, 0.5)
    approx(model_stock(base, [sd(w=[1.0, 0.0]), sd(w=[1.0, 1.0])])["w"], [0.828427, 0.414214])
    # orthogonal -> t = 0: theta_0
    approx(model_stock(base, [sd(w=[1.0, 0.0]), sd(w=[0.0, 1.0])])["w"], [0.0, 0.0])


def test_model_stock_ratio_of_three_models():
    base = sd(w=[0.0, 0.0])
    # directions (1, 0), (0, 1), (1, 1)/sqrt 2: pairwise cosines 0, 1/sqrt 2, 1/sqrt 2, mean c = sqrt(2)/3
    # t = 3c / (1 + 2c) = 0.727922; mean task vector ((1 + 0 + 2)/3, (0 + 1 + 2)/3) = (1, 1)
    t = 3 * (math.sqrt(2) / 3) / (1 + 2 * math.sqrt(2) / 3)
    approx(model_stock(base, [sd(w=[1.0, 0.0]), sd(w=[0.0, 1.0]), sd(w=[2.0, 2.0])])["w"], [t, t])
    # three collinear task vectors: c = 1, t = 1, the plain average
    approx(model_stock(base, [sd(w=[1.0, 1.0]), sd(w=[2.0, 2.0]), sd(w=[3.0, 3.0])])["w"], [2.0, 2.0])
    # one model is its own centre; a zero task vector among them gives the plain average
    approx(model_stock(base, [sd(w=[1.0, 3.0])])["w"], [1.0, 3.0])
    approx(model_stock(base, [base, sd(w=[3.0, 0.0]), sd(w=[0.0, 3.0])])["w"], [1.0, 1.0])


def test_dare_drops_and_rescales_with_a_seed():
    base = {"w": torch.zeros(10_000)}
    tau = torch.linspace(-1, 1, 10_000)
    finetuned = {"w": tau.clone()}
    merged = dare(base, [finetuned], drop=0.5, seed=3)["w"]
    kept = merged != 0
    # every survivor is tau / (1 - p), every other entry is 0
    assert torch.allclose(merged[kept], 2 * tau[kept])
    assert abs(kept.float().mean().item() - 0.5) < 0.02
    assert torch.equal(dare(base, [finetuned], drop=0.5, seed=3)["w"], merged)
    assert not torch.equal(dare(base, [finetuned], drop=0.5, seed=4)["w"], merged)
    # p = 0 is task arithmetic
    assert torch.equal(dare(base, [finetuned], drop=0.0)["w"], task_arithmetic(base, [finetuned])["w"])


def test_dare_masks_follow_model_ids():
    base = {"w": torch.zeros(1000)}
    finetuned = {"w": torch.ones(1000)}
    first = dare(base, [finetuned, finetuned], drop=0.5, model_ids=[0, 1])["w"]
    # two models with different ids: survivors of each count 2, so entries are 0, 2 or 4
    assert set(first.unique().tolist()) == {0.0, 2.0, 4.0}
    same_ids = dare(base, [finetuned, finetuned], drop=0.5, model_ids=[5, 5])["w"]
    assert set(same_ids.unique().tolist()) == {0.0, 4.0}


def test_dare_ties_combine():
    base = {"w": torch.zeros(4)}
    up, down = {"w": torch.tensor([1.0, 1.0, 1.0, 1.0])}, {"w": torch.tensor([-3.0, -3.0, -3.0, -3.0])}
    # without drops (p = 0): signs elect '-' (sum -2), the disjoint mean keeps only -3
    approx(dare(base, [up, down], drop=0.0, combine="ties")["w"], [-3.0] * 4)


def test_breadcrumbs_drops_both_tails_per_tensor():
    tau = torch.tensor([0.1, -5.0, 2.0, -0.3, 1.0, 3.0, -0.05, 0.7, -2.5, 0.4])
    # n = 10: drop the floor(0.1 n) = 1 largest (-5) and floor(0.3 n) = 3 smallest (-0.05, 0.1, -0.3)
    assert breadcrumbs_mask(tau, 0.1, 0.3).tolist() == [False, False, True, False, True, True, False, True, True, True]
    base = {"w": torch.zeros(10)}
    merged = breadcrumbs(base, [{"w": tau}, {"w": tau}], drop_largest=0.1, drop_smallest=0.3, scaling=0.5)
    approx(merged["w"], [0, 0, 2.0, 0, 1.0, 3.0, 0, 0.7, -2.5, 0.4])


def test_breadcrumbs_ties_combine():
    base = {"w": torch.zeros(4)}
    first = {"w": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    second = {"w": torch.tensor([-1.0, -2.0, 6.0, 9.0])}
    # drop 1 smallest and 1 largest per tensor: first -> [0, 2, 3, 0]; second -> [0, -2, 6, 0]
    # entry 1: sum 0 elects + -> 2; entry 2: mean(3, 6) = 4.5
    merged = breadcrumbs(base, [first, second], drop_largest=0.25, drop_smallest=0.25, combine="ties")
    approx(merged["w"], [0.0, 2.0, 4.5, 0.0])


def test_block_depths_per_tower():
    keys = [
        "visual.transformer.resblocks.0.attn.in_proj_weight",
        "visual.transformer.resblocks.1.mlp.c_fc.weight",
        "visual.transformer.resblocks.2.ln_1.weight",
        "transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.1.ln_2.bias",
        "visual.proj",
        "logit_scale",
    ]
    assert block_depths(keys) == {keys[0]: 0.0, keys[1]: 0.5, keys[2]: 1.0, keys[3]: 0.0, keys[4]: 1.0}


def test_lines_scales_by_depth():
    base = {
        "visual.transformer.resblocks.0.w": torch.zeros(2),
        "visual.transformer.resblocks.1.w": torch.zeros(2),
        "visual.transformer.resblocks.2.w": torch.zeros(2),
        "transformer.resblocks.0.w": torch.zeros(2),
        "transformer.resblocks.1.w": torch.zeros(2),
        "token_embedding.weight": torch.zeros(2),
        "logit_scale": torch.zeros(()),
    }
    merged = {key: torch.full_like(value, 2.0) for key, value in base.items()}
    scaled = lines(base, merged, alpha=0.2, beta=0.6)
    # tau = 2 everywhere; factors 0.2 + 0.6 * layer/(L-1), with L = 3 (image) and 2 (text); 0.2 outside blocks
    assert scaled["visual.transformer.resblocks.0.w"].tolist() == pytest.approx([0.4, 0.4])
    assert scaled["visual.transformer.resblocks.1.w"].tolist() == pytest.approx([1.0, 1.0])
    assert scaled["visual.transformer.resblocks.2.w"].tolist() == pytest.approx([1.6, 1.6])
    assert scaled["transformer.resblocks.1.w"].tolist() == pytest.approx([1.6, 1.6])
    assert scaled["token_embedding.weight"].tolist() == pytest.approx([0.4, 0.4])
    assert scaled["logit_scale"].item() == pytest.approx(0.4)


ALL_OPERATORS = [
    lambda base, models: interpolate(base, models),
    lambda base, models: task_arithmetic(base, models, 0.7),
    lambda base, models: ties(base, models, 0.5),
    lambda base, models: dare(base, models, 0.3, combine="ties"),
    lambda base, models: dare(base, models, 0.3),
    lambda base, models: breadcrumbs(base, models, 0.1, 0.3),
    lambda base, models: magmax(base, models),
    lambda base, models: slerp(base, models[:2]),
    lambda base, models: model_stock(base, models),
    lambda base, models: lines(base, interpolate(base, models), 0.5, 0.5),
]


@pytest.mark.parametrize("merge", ALL_OPERATORS)
def test_inputs_are_never_modified(merge):
    generator = torch.Generator().manual_seed(0)
    base = {
        "transformer.resblocks.0.w": torch.randn(3, 4, generator=generator),
        "transformer.resblocks.1.w": torch.randn(5, generator=generator),
        "counter": torch.tensor([1, 2], dtype=torch.int64),
    }
    models = [
        {k: (v + torch.randn(v.shape, generator=generator) if v.is_floating_point() else v + 10 * (i + 1)) for k, v in base.items()}
        for i in range(3)
    ]
    before = [{k: v.clone() for k, v in state.items()} for state in [base, *models]]
    merged = merge(base, models)
    for original, state in zip(before, [base, *models], strict=True):
        assert all(torch.equal(original[k], state[k]) for k in state)
    newest = models[-1] if merge is not ALL_OPERATORS[7] else models[1]
    assert torch.equal(merged["counter"], newest["counter"])
    assert merged["counter"].data_ptr() != newest["counter"].data_ptr()
    assert all(merged[k].data_ptr() != base[k].data_ptr() for k in base)


def test_half_precision_is_merged_in_float32_and_keeps_its_dtype():
    base = {"w": torch.tensor([1.0, 2.0], dtype=torch.bfloat16)}
    merged = operators.task_arithmetic(base, [{"w": torch.tensor([2.0, 2.0], dtype=torch.bfloat16)}], 0.5)
    assert merged["w"].dtype == torch.bfloat16
    assert merged["w"].tolist() == [1.5, 2.0]
