"""Meta schedules against their formulas (DESIGN §6) at chosen points, and their properties over a stream."""

import math

import pytest
from fomo_schedulers.meta import (
    CosineAutoregressive,
    CosineDynamicRecovery,
    CosineMetaParams,
    RsqrtAutoregressive,
    RsqrtContinued,
    RsqrtMetaParams,
    RsqrtRecovered,
    RsqrtRecoveredParams,
)
from fomo_schedulers.schedules import Rsqrt, RsqrtParams

from fomo_host.api import FomoError
from fomo_host.testing import build_component, validate_params

# Most checks use S = 20 steps per task with W = C = 2 (10%) and lr_min = 0.
S = 20
RSQRT = {"warmup": 0.1, "cooldown": 0.1, "min_factor": 0.0}


def test_rsqrt_autoregressive_peaks_and_decay():
    schedule = RsqrtAutoregressive(RsqrtMetaParams(**RSQRT))
    # v_1 = sqrt(2 * 2 / (20 + 2)) = sqrt(4/22) = 0.426401
    assert schedule(1, S, 1, 5) == pytest.approx(0.426401, abs=1e-6)
    assert schedule(0, S, 1, 5) == pytest.approx(0.426401 / 2, abs=1e-6)
    assert schedule(8, S, 1, 5) == pytest.approx(0.426401 * 0.5, abs=1e-6)  # sqrt(2/8) = 0.5
    # v_2 = sqrt(3 * 2 / (40 + 2)) = sqrt(1/7) = 0.377964
    assert schedule(1, S, 2, 5) == pytest.approx(0.377964, abs=1e-6)
    assert schedule(S - 1, S, 2, 5) == 0.0


def test_rsqrt_autoregressive_with_floor():
    schedule = RsqrtAutoregressive(RsqrtMetaParams(warmup=2, cooldown=2, min_factor=0.01))
    base = 0.01 + 0.426401 * 0.99
    assert schedule(1, S, 1, 5) == pytest.approx(base, abs=1e-6)
    assert schedule(8, S, 1, 5) == pytest.approx(0.01 + 0.5 * (base - 0.01), abs=1e-6)


def test_rsqrt_continued_peaks():
    schedule = RsqrtContinued(RsqrtMetaParams(**RSQRT))
    assert schedule(1, S, 0, 5) == pytest.approx(1.0)
    # v_1 = sqrt(2 / (1 * 18 - 0 * 2)) = 1/3; v_2 = sqrt(2 / (2 * 18 - 2)) = sqrt(2/34) = 0.242536
    assert schedule(1, S, 1, 5) == pytest.approx(1 / 3)
    assert schedule(8, S, 1, 5) == pytest.approx(1 / 6)
    assert schedule(1, S, 2, 5) == pytest.approx(0.242536, abs=1e-6)


def test_rsqrt_recovered_continues_one_decay():
    schedule = RsqrtRecovered(RsqrtRecoveredParams(**RSQRT))
    rsqrt = Rsqrt(RsqrtParams(**RSQRT))
    assert [schedule(n, S, 0, 5) for n in range(S)] == [rsqrt(n, S, 0, 5) for n in range(S)]
    # task 1: k = 1 * (20 - 2 - 2) = 16; reference warmup target sqrt(2/32) = 0.25
    assert schedule(0, S, 1, 5) == pytest.approx(0.125)
    assert schedule(1, S, 1, 5) == pytest.approx(0.25)
    assert schedule(2, S, 1, 5) == pytest.approx(1 / 3)  # sqrt(2/(2+16))
    assert schedule(18, S, 1, 5) == pytest.approx(math.sqrt(2 / 34) / 2)  # cooldown (2-0-1)/2
    assert schedule(19, S, 1, 5) == 0.0
    # task 2: k = 32; n = 2: sqrt(2/34) = 0.242536
    assert schedule(2, S, 2, 5) == pytest.approx(0.242536, abs=1e-6)


def test_rsqrt_recovered_join_warmup_target():
    schedule = RsqrtRecovered(RsqrtRecoveredParams(**RSQRT, warmup_peak="join"))
    assert schedule(1, S, 1, 5) == pytest.approx(math.sqrt(2 / 16))  # 0.353553
    assert schedule(2, S, 1, 5) == pytest.approx(1 / 3)


def test_cosine_autoregressive_peaks():
    # S = 12, W = 2, S - W = 10, lr_min = 0
    schedule = CosineAutoregressive(CosineMetaParams(warmup=2, min_factor=0))
    assert schedule(1, 12, 0, 5) == 1.0
    # v_1 = 0.5 (1 + cos(0.55 pi)) = 0.421783; v_2 = 0.5 (1 + cos(0.7 pi)) = 0.206107
    assert schedule(1, 12, 1, 5) == pytest.approx(0.421783, abs=1e-6)
    assert schedule(1, 12, 2, 5) == pytest.approx(0.206107, abs=1e-6)
    # decay from base_1: n = 2 -> 0.5 (1 + cos(pi/10)) * 0.421783 = 0.411461
    assert schedule(2, 12, 1, 5) == pytest.approx(0.411461, abs=1e-6)
    assert schedule(11, 12, 1, 5) == pytest.approx(0.0, abs=1e-12)


def test_cosine_autoregressive_peaks_roughly_halve():
    schedule = CosineAutoregressive(CosineMetaParams(warmup=0.1, min_factor=0))
    peaks = [schedule(99, 1000, t, 5) for t in range(4)]
    assert peaks == pytest.approx([1.0, 0.5, 0.25, 0.146], abs=0.01)


def test_cosine_dynamic_recovery_follows_the_horizon_cosine():
    # S = 10, W = 2 steps, lr_min = 0; task 1: H = 20, W_H = 4, g = 10 + n
    schedule = CosineDynamicRecovery(CosineMetaParams(warmup=2, min_factor=0))
    # warmup target v_1 = 0.5 (1 + cos(9 pi / 16)) = 0.402455
    assert schedule(1, 10, 1, 5) == pytest.approx(0.402455, abs=1e-6)
    # n = 2: (g - W_H + 1)/(H - W_H) = 9/16: the same value, so warmup and decay meet
    assert schedule(2, 10, 1, 5) == pytest.approx(0.402455, abs=1e-6)
    # n = 5: 12/16 -> 0.5 (1 + cos(0.75 pi)) = 0.146447
    assert schedule(5, 10, 1, 5) == pytest.approx(0.146447, abs=1e-6)
    assert schedule(9, 10, 1, 5) == pytest.approx(0.0, abs=1e-12)


def test_cosine_dynamic_recovery_with_a_warmup_fraction():
    # S = 20, W = 2, task 1: H = 40, W_H = ceil(0.1 * 40) = 4; n = 12: (20 + 12 - 4 + 1)/36 = 29/36
    schedule = CosineDynamicRecovery(CosineMetaParams(warmup=0.1, min_factor=0.001))
    expected = 0.001 + 0.5 * (1 + math.cos(math.pi * 29 / 36)) * 0.999
    assert schedule(12, 20, 1, 5) == pytest.approx(expected)


def test_cosine_meta_rejects_a_warmup_filling_the_task():
    with pytest.raises(FomoError, match="warmup"):
        CosineAutoregressive(CosineMetaParams(warmup=10))(0, 10, 1, 5)


# ----------------------------------------------------------------------------- properties

NAMES = [
    "constant",
    "cosine",
    "rsqrt",
    "wsd",
    "rsqrt-autoregressive",
    "rsqrt-continued",
    "rsqrt-recovered",
    "cosine-autoregressive",
    "cosine-dynamic-recovery",
]
META = NAMES[4:]


def build(name, **params):
    return build_component("scheduler", name, params)


def test_every_scheduler_is_registered():
    for name in NAMES:
        validate_params("scheduler", name)  # an unknown name is an error listing the available ones


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [37, 100])
def test_never_negative_and_peak_at_end_of_warmup(name, steps):
    schedule = build(name)
    warmup = math.ceil(0.1 * steps) if name != "constant" else 0
    for task in range(6):
        values = [schedule(n, steps, task, 6) for n in range(steps)]
        assert min(values) >= 0
        if name == "rsqrt-recovered" and task > 0:
            # the reference warmup target sqrt(W/(2k)) lies below the decay curve it joins
            assert values[warmup - 1] < values[warmup]
        elif warmup:
            assert values[warmup - 1] == pytest.approx(max(values))
            assert all(a < b for a, b in zip(values[: warmup - 1], values[1:warmup], strict=True))


def test_recovered_join_peaks_at_end_of_warmup():
    schedule = build("rsqrt-recovered", warmup_peak="join")
    for task in range(1, 6):
        values = [schedule(n, 100, task, 6) for n in range(100)]
        assert values[9] == max(values)


@pytest.mark.parametrize("name", META)
def test_meta_peaks_do_not_increase_across_tasks(name):
    schedule = build(name)
    peaks = [max(schedule(n, 100, task, 10) for n in range(100)) for task in range(10)]
    assert peaks[0] == pytest.approx(1.0)
    assert all(later <= earlier + 1e-12 for earlier, later in zip(peaks, peaks[1:], strict=False))
    assert peaks[-1] < peaks[1] < peaks[0]


@pytest.mark.parametrize("name", ["rsqrt", "rsqrt-autoregressive", "rsqrt-continued", "rsqrt-recovered"])
def test_rsqrt_cooldown_reaches_zero_at_the_last_step(name):
    schedule = build(name)
    for task in range(5):
        assert schedule(99, 100, task, 5) == 0.0
        assert schedule(90, 100, task, 5) > 0.0  # first cooldown step: (10 - 0 - 1)/10 of the decay


@pytest.mark.parametrize("name", ["cosine", "wsd", "cosine-autoregressive", "cosine-dynamic-recovery"])
def test_decays_end_at_the_floor(name):
    schedule = build(name, min_factor=0.01)
    for task in range(4):
        assert schedule(99, 100, task, 4) == pytest.approx(0.01)
