"""Per-task schedules against their formulas (DESIGN §6), values worked out by hand at chosen points."""

import math

import pytest
from fomo_schedulers.schedules import (
    WSD,
    Constant,
    ConstantParams,
    Cosine,
    CosineParams,
    Rsqrt,
    RsqrtParams,
    WSDParams,
    resolve_steps,
)
from pydantic import ValidationError

from fomo_host.api import FomoError


def test_resolve_steps_reads_fractions_and_step_counts():
    assert resolve_steps(0.1, 100) == 10
    assert resolve_steps(0.1, 95) == 10  # ceil(9.5)
    assert resolve_steps(0.07, 100) == 7  # 0.07 * 100 is 7.000000000000001 in floating point
    assert resolve_steps(0.0, 100) == 0
    assert resolve_steps(25, 100) == 25
    assert resolve_steps(250, 100) == 100


def test_a_step_count_must_be_whole():
    with pytest.raises(ValidationError, match="neither a fraction"):
        CosineParams(warmup=2.5)
    assert CosineParams(warmup=3).warmup == 3


def test_constant_with_warmup():
    schedule = Constant(ConstantParams(warmup=4))
    assert [schedule(n, 10, 0, 1) for n in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert Constant(ConstantParams())(0, 10, 3, 5) == 1.0


def test_cosine_without_floor_at_chosen_points():
    # S = 10, W = 0, lr_min = 0: 0.5 (1 + cos(pi (n+1)/10))
    schedule = Cosine(CosineParams(warmup=0, min_factor=0))
    assert schedule(4, 10, 0, 1) == pytest.approx(0.5)  # cos(pi/2) = 0
    assert schedule(2, 10, 0, 1) == pytest.approx(0.793893, abs=1e-6)  # 0.5 (1 + cos(0.3 pi)) = 0.5 (1 + 0.587785)
    assert schedule(9, 10, 0, 1) == pytest.approx(0.0, abs=1e-12)


def test_cosine_with_warmup_and_floor():
    # S = 20, warmup 0.1 -> W = 2, lr_min = 0.001
    schedule = Cosine(CosineParams(warmup=0.1, min_factor=0.001))
    assert schedule(0, 20, 0, 1) == pytest.approx(0.5)
    assert schedule(1, 20, 0, 1) == pytest.approx(1.0)
    # n = 10: (n-W+1)/(S-W) = 9/18 -> 0.001 + 0.5 * 0.999
    assert schedule(10, 20, 0, 1) == pytest.approx(0.5005)
    assert schedule(19, 20, 0, 1) == pytest.approx(0.001)


def test_rsqrt_at_chosen_points():
    # S = 20, W = C = 2, lr_min = 0
    schedule = Rsqrt(RsqrtParams(warmup=0.1, cooldown=0.1, min_factor=0))
    assert schedule(0, 20, 0, 1) == pytest.approx(0.5)
    assert schedule(1, 20, 0, 1) == pytest.approx(1.0)
    assert schedule(2, 20, 0, 1) == pytest.approx(1.0)  # sqrt(2/2)
    assert schedule(8, 20, 0, 1) == pytest.approx(0.5)  # sqrt(2/8)
    assert schedule(17, 20, 0, 1) == pytest.approx(math.sqrt(2 / 17))
    assert schedule(18, 20, 0, 1) == pytest.approx(1 / 6)  # sqrt(2/18) * (2-0-1)/2
    assert schedule(19, 20, 0, 1) == 0.0


def test_rsqrt_floor_scales_the_decay_only():
    schedule = Rsqrt(RsqrtParams(warmup=2, cooldown=2, min_factor=0.001))
    assert schedule(8, 20, 0, 1) == pytest.approx(0.001 + 0.5 * 0.999)
    assert schedule(19, 20, 0, 1) == 0.0


def test_rsqrt_rejects_warmup_and_cooldown_longer_than_the_task():
    schedule = Rsqrt(RsqrtParams(warmup=12, cooldown=10))
    with pytest.raises(FomoError, match="exceed the 20 steps"):
        schedule(0, 20, 0, 1)


@pytest.mark.parametrize("shape, expected", [("linear", 0.75), ("cosine", 0.853553)])
def test_wsd_decay_shapes(shape, expected):
    # S = 10, W = 1, D = 4: decay over steps 6..9, p = (n - 6 + 1)/4
    schedule = WSD(WSDParams(warmup=1, decay=4, decay_shape=shape, min_factor=0))
    assert schedule(0, 10, 0, 1) == 1.0
    assert [schedule(n, 10, 0, 1) for n in range(1, 6)] == [1.0] * 5
    assert schedule(6, 10, 0, 1) == pytest.approx(expected, abs=1e-6)  # p = 1/4
    assert schedule(7, 10, 0, 1) == pytest.approx(0.5)  # p = 1/2 for both shapes
    assert schedule(9, 10, 0, 1) == pytest.approx(0.0, abs=1e-12)


def test_wsd_warmup_and_floor():
    schedule = WSD(WSDParams(warmup=0.2, decay=0.2, min_factor=0.01))
    assert schedule(0, 10, 0, 1) == pytest.approx(0.5)
    assert schedule(9, 10, 0, 1) == pytest.approx(0.01)
    with pytest.raises(FomoError, match="decay"):
        WSD(WSDParams(warmup=6, decay=6))(0, 10, 0, 1)


@pytest.mark.parametrize(
    ("params", "first", "second"),
    [(RsqrtParams, "warmup", "cooldown"), (WSDParams, "warmup", "decay")],
)
def test_fractions_that_overfill_a_task_fail_when_the_spec_is_validated(params, first, second):
    with pytest.raises(ValueError, match=rf"{first} \(0.6\) \+ {second} \(0.5\) exceed the whole task"):
        params(**{first: 0.6, second: 0.5})
    params(**{first: 0.5, second: 0.5})
    params(**{first: 3, second: 0.9})  # in steps: checked once the steps per task are known
