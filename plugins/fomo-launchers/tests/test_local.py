"""The local launcher: the conformance suite (real tiny studies) and how it places runs."""

from __future__ import annotations

import pytest
from fomo_launchers.local import LocalLauncher, LocalParams

from fomo_host.api import FomoError, LauncherConformance


class TestLocalLauncher(LauncherConformance):
    launcher_name = "local"
    params = {"max_parallel": 2, "threads_per_run": 1}
    invalid_params = {"max_parallel": 0}


def test_threads_are_split_between_the_concurrent_runs(monkeypatch):
    monkeypatch.setattr("fomo_launchers.local.cpu_cores", lambda: 16)
    launcher = LocalLauncher(LocalParams(max_parallel=4, gpus=None, gpus_per_run=0))
    assert launcher.threads_per_run == 4
    assert launcher._placement([])["OMP_NUM_THREADS"] == "4"
    assert LocalLauncher(LocalParams(max_parallel=4, threads_per_run=2, gpus_per_run=0)).threads_per_run == 2


def test_one_gpu_per_run_by_default_on_a_gpu_machine(monkeypatch):
    monkeypatch.setattr("fomo_launchers.local.cpu_cores", lambda: 8)
    launcher = LocalLauncher(LocalParams(gpus=["0", "1", "2", "3"]))
    assert (launcher.gpus_per_run, launcher.max_parallel, launcher.threads_per_run) == (1, 4, 2)
    assert launcher._placement(["2"])["CUDA_VISIBLE_DEVICES"] == "2"
    launcher.check()
    assert "1 GPU each" in launcher.describe()


def test_gpus_named_by_the_environment_are_shared_out(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    launcher = LocalLauncher(LocalParams())
    assert launcher.gpus == ["3", "5"] and launcher.max_parallel == 2


def test_runs_over_several_gpus_and_too_few_gpus(monkeypatch):
    launcher = LocalLauncher(LocalParams(gpus=["0", "1", "2", "3"], gpus_per_run=2))
    assert launcher.max_parallel == 2
    launcher.check()
    with pytest.raises(FomoError, match="needs 6 GPUs; visible GPUs: 4"):
        LocalLauncher(LocalParams(gpus=["0", "1", "2", "3"], gpus_per_run=2, max_parallel=3)).check()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(FomoError, match="needs 1 GPUs; visible GPUs: none"):
        LocalLauncher(LocalParams(gpus_per_run=1)).check()


def test_cpu_only_runs_on_a_gpu_machine_see_no_gpu():
    launcher = LocalLauncher(LocalParams(gpus=["0", "1"], gpus_per_run=0, max_parallel=2))
    assert launcher._placement([])["CUDA_VISIBLE_DEVICES"] == ""
