"""Every scheduler passes the scheduler conformance suite: a pure, finite, non-negative factor at every step."""

from __future__ import annotations

from fomo_host.testing import SchedulerConformance


class TestConstant(SchedulerConformance):
    scheduler_name = "constant"
    params = {"warmup": 0.1}
    max_factor = 1.0
    horizon_free = True


class TestCosine(SchedulerConformance):
    scheduler_name = "cosine"
    max_factor = 1.0
    horizon_free = True
    invalid_params = {"min_factor": -0.1}


class TestRsqrt(SchedulerConformance):
    scheduler_name = "rsqrt"
    params = {"warmup": 0.1, "cooldown": 0.1}
    max_factor = 1.0
    horizon_free = True


class TestWSD(SchedulerConformance):
    scheduler_name = "wsd"
    max_factor = 1.0
    horizon_free = True


class TestRsqrtAutoregressive(SchedulerConformance):
    scheduler_name = "rsqrt-autoregressive"
    max_factor = 1.0
    horizon_free = True


class TestRsqrtContinued(SchedulerConformance):
    scheduler_name = "rsqrt-continued"
    max_factor = 1.0
    horizon_free = True


class TestRsqrtRecovered(SchedulerConformance):
    scheduler_name = "rsqrt-recovered"
    max_factor = 1.0
    horizon_free = True


class TestCosineAutoregressive(SchedulerConformance):
    scheduler_name = "cosine-autoregressive"
    max_factor = 1.0
    horizon_free = True


class TestCosineDynamicRecovery(SchedulerConformance):
    scheduler_name = "cosine-dynamic-recovery"
    max_factor = 1.0
    horizon_free = True


class TestInfinite(SchedulerConformance):
    scheduler_name = "infinite"
    params = {"warmup": 0.1, "decay": 0.2, "constant": 0.5, "cooldown": 0.1, "rewarm": 0.05}
    invalid_params = {"constant": 0}
    max_factor = 1.0
    horizon_free = True


class TestRsqrtInfinite(SchedulerConformance):
    scheduler_name = "rsqrt-infinite"
    max_factor = 1.0
    horizon_free = True


class TestCosineStream(SchedulerConformance):
    scheduler_name = "cosine-stream"
    max_factor = 1.0
    horizon_free = False
