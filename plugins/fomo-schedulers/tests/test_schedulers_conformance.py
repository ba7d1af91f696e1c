"""Every scheduler passes the scheduler conformance suite: a pure, finite, non-negative factor at every step."""

from __future__ import annotations

from fomo_host.testing import SchedulerConformance


class TestConstant(SchedulerConformance):
    scheduler_name = "constant"
    params = {"warmup": 0.1}
    max_factor = 1.0


class TestCosine(SchedulerConformance):
    scheduler_name = "cosine"
    max_factor = 1.0
    invalid_params = {"min_factor": -0.1}


class TestRsqrt(SchedulerConformance):
    scheduler_name = "rsqrt"
    params = {"warmup": 0.1, "cooldown": 0.1}
    max_factor = 1.0


class TestWSD(SchedulerConformance):
    scheduler_name = "wsd"
    max_factor = 1.0


class TestRsqrtAutoregressive(SchedulerConformance):
    scheduler_name = "rsqrt-autoregressive"
    max_factor = 1.0


class TestRsqrtContinued(SchedulerConformance):
    scheduler_name = "rsqrt-continued"
    max_factor = 1.0


class TestRsqrtRecovered(SchedulerConformance):
    scheduler_name = "rsqrt-recovered"
    max_factor = 1.0


class TestCosineAutoregressive(SchedulerConformance):
    scheduler_name = "cosine-autoregressive"
    max_factor = 1.0


class TestCosineDynamicRecovery(SchedulerConformance):
    scheduler_name = "cosine-dynamic-recovery"
    max_factor = 1.0
