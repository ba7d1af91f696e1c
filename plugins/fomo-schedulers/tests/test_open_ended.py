"""Schedules without a horizon (infinite, rsqrt-infinite) and the fixed-horizon cosine they replace, at chosen points."""

import math

import pytest
from fomo_schedulers.open_ended import (
    CosineStream,
    CosineStreamParams,
    Infinite,
    InfiniteParams,
    RsqrtInfinite,
    RsqrtInfiniteParams,
)
from pydantic import ValidationError

from fomo_host.api import FomoError, needs_horizon


def test_infinite_warms_up_once_settles_holds_and_anneals_every_task():
    # S = 20: W = 2, D = 4, C = 2, c = 0.5, lr_min = 0.01, no rewarm
    schedule = Infinite(InfiniteParams(warmup=0.1, decay=0.2, constant=0.5, cooldown=0.1, min_factor=0.01))
    first = [schedule(n, 20, 0, 1) for n in range(20)]
    assert first[:2] == [0.5, 1.0]
    # the decay: cosine from 1 to 0.5 over 4 steps, at its end exactly the level
    assert first[2] == pytest.approx(0.5 + 0.5 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert first[5] == pytest.approx(0.5)
    assert first[6:18] == [0.5] * 12
    assert first[18] == pytest.approx(0.01 + 0.5 * 0.49)  # halfway down the anneal
    assert first[19] == pytest.approx(0.01)
    later = [schedule(n, 20, 3, 9) for n in range(20)]
    assert later[:18] == [0.5] * 18, "a later task holds the level from its first step: no warmup again"
    assert later[19] == pytest.approx(0.01)


def test_infinite_rewarm_rises_from_the_floor_to_the_level():
    schedule = Infinite(InfiniteParams(warmup=0.1, decay=0, constant=0.4, cooldown=0.1, rewarm=4, min_factor=0.0))
    assert [schedule(n, 20, 1, 2) for n in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4])
    assert schedule(0, 20, 0, 2) == 0.5, "the first task warms up to lr0, not the level"


def test_infinite_refuses_phases_longer_than_a_task():
    with pytest.raises(ValidationError, match="exceed the whole task"):
        InfiniteParams(warmup=0.3, decay=0.5, cooldown=0.3)
    with pytest.raises(ValidationError, match="above the constant level"):
        InfiniteParams(constant=0.01, min_factor=0.1)
    schedule = Infinite(InfiniteParams(warmup=5, decay=5, cooldown=5))
    with pytest.raises(FomoError, match=r"warmup \(5 steps\) \+ decay \(5 steps\) \+ cooldown \(5 steps\) exceed the 12 steps"):
        schedule(0, 12, 0, 1)


def test_rsqrt_infinite_continues_the_decay_over_the_global_step():
    # S = 10, W = 1, C = 1, lr_min = 0
    schedule = RsqrtInfinite(RsqrtInfiniteParams(warmup=0.1, cooldown=0.1, min_factor=0.0))
    assert schedule(0, 10, 0, 1) == 1.0
    assert schedule(3, 10, 0, 1) == pytest.approx(math.sqrt(1 / 3))
    assert schedule(9, 10, 0, 1) == 0.0  # the anneal reaches lr_min at each task's last step
    # the second task goes on at g = 10 + n: no warmup, no restart
    assert schedule(0, 10, 1, 2) == pytest.approx(math.sqrt(1 / 10))
    assert schedule(5, 10, 1, 2) == pytest.approx(math.sqrt(1 / 15))


def test_cosine_stream_needs_the_horizon():
    schedule = CosineStream(CosineStreamParams(warmup=0, min_factor=0))
    assert needs_horizon(schedule)
    # one cosine over 4 tasks of 10 steps: halfway through the stream at g = 19
    assert schedule(9, 10, 1, 4) == pytest.approx(0.5)
    assert schedule(9, 10, 1, 2) == pytest.approx(0.0, abs=1e-12), "the same step ends a 2-task stream"
    assert not needs_horizon(Infinite(InfiniteParams())) and not needs_horizon(RsqrtInfinite(RsqrtInfiniteParams()))
