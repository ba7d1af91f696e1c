"""Registers the ``local``, ``ray`` and ``slurm`` launchers; a launcher (and ray or submitit) loads when a sweep uses it."""

from fomo_host.api import LauncherRegister, hookimpl

from .params import LocalParams, RayParams, SlurmParams


@hookimpl
def register_launchers(register: LauncherRegister) -> None:
    register(
        name="local",
        factory="fomo_launchers.local:LocalLauncher",
        params=LocalParams,
        description="N runs at a time as subprocesses of the sweep on this machine.",
    )
    register(
        name="ray",
        factory="fomo_launchers.ray_launcher:RayLauncher",
        params=RayParams,
        description="Each run is a Ray task declaring its CPUs, GPUs and memory, so Ray places the runs over a cluster's nodes.",
    )
    register(
        name="slurm",
        factory="fomo_launchers.slurm:SlurmLauncher",
        params=SlurmParams,
        description="Each run is a Slurm job with its partition, time limit, GPUs, CPUs and memory; a sweep's runs go as one job array.",
    )
