"""The slurm launcher: the conformance suite on submitit's local executor, and the Slurm options it submits with."""

from __future__ import annotations

import pytest
from fomo_launchers.slurm import SlurmLauncher, SlurmParams
from pydantic import ValidationError

from fomo_host.api import LauncherConformance


class TestSlurmLauncherOnTheLocalExecutor(LauncherConformance):
    launcher_name = "slurm"
    params = {"cluster": "local", "cpus_per_run": 1, "time_min": 10, "array_parallelism": 2}
    invalid_params = {"partition": "gpu"}  # a Slurm option, which the local executor cannot honour


def test_slurm_options_reach_sbatch(tmp_path, monkeypatch):
    import submitit

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # as on a node with srun
    params = SlurmParams(
        partition="gpu",
        time_min=600,
        gpus_per_run=2,
        cpus_per_run=8,
        mem_gb=64,
        array_parallelism=4,
        account="ml",
        additional={"mail-type": "END"},
        setup=["source /opt/venv/bin/activate"],
    )
    executor, processes = SlurmLauncher(params)._executor(tmp_path)
    assert processes == 2  # two GPUs: accelerate launch with two processes
    text = executor._make_submission_file_text("python -m submitit.core._submit", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=600",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=65536M",
        "#SBATCH --account=ml",
        "#SBATCH --mail-type=END",
        "source /opt/venv/bin/activate",
    ):
        assert line in text, f"{line!r} missing from:\n{text}"


def test_slurm_only_options_are_refused_without_slurm():
    with pytest.raises(ValidationError, match="partition, mem_gb: Slurm options"):
        SlurmParams(cluster="local", partition="gpu", mem_gb=8)
