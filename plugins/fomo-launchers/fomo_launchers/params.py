"""The launchers' Params: light, so that listing plugins and checking a study import neither ray nor submitit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SLURM_ONLY = ("partition", "account", "qos", "constraint", "exclude", "mem_gb", "additional")


class LocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_parallel: int | None = Field(default=None, ge=1)
    """Runs at the same time; default: the GPUs divided by gpus_per_run on a GPU machine, else 1."""
    gpus_per_run: int | None = Field(default=None, ge=0)
    """GPUs each run gets (CUDA_VISIBLE_DEVICES); more than 1 starts the run through accelerate launch, one process per GPU.
    Default: 1 on a machine with GPUs, else 0; 0 on a GPU machine keeps the runs on the CPU."""
    threads_per_run: int | None = Field(default=None, ge=1)
    """CPU threads of each run (OMP_NUM_THREADS, MKL_NUM_THREADS); default: this machine's cores divided by max_parallel."""
    gpus: list[str] | None = Field(default=None, min_length=1)
    """The GPUs to share out, as CUDA_VISIBLE_DEVICES names them (indices or UUIDs); default: every visible GPU."""


class RayParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str | None = None
    """An existing cluster: "auto" (the one this machine belongs to, as after `ray start`), "HOST:6379", or a Ray Client
    address "ray://HOST:10001". None: start a Ray instance on this machine for the sweep and stop it at the end."""
    cpus_per_run: float = Field(default=1.0, gt=0)
    """CPUs each run's task declares; the run uses that many threads (at least 1)."""
    gpus_per_run: float = Field(default=0.0, ge=0)
    """GPUs each run's task declares (Ray sets CUDA_VISIBLE_DEVICES); 2 or more (a whole number) starts the run through
    accelerate launch, one process per GPU."""
    memory_gb_per_run: float | None = Field(default=None, gt=0)
    """Memory each run's task declares, so Ray does not place more runs on a node than fit."""
    max_parallel: int | None = Field(default=None, ge=1)
    """At most this many runs at once; default: as many as the cluster's free resources allow."""
    num_cpus: int | None = Field(default=None, ge=1)
    """Only without an address: the CPUs the local Ray instance may use (default: all of this machine's)."""
    num_gpus: int | None = Field(default=None, ge=0)
    """Only without an address: the GPUs the local Ray instance may use (default: all visible ones)."""
    runtime_env: dict[str, Any] | None = None
    """Passed to ray.init: e.g. {"env_vars": {...}} for the workers of a remote cluster."""

    @model_validator(mode="after")
    def _consistent(self) -> RayParams:
        if self.gpus_per_run > 1 and self.gpus_per_run != int(self.gpus_per_run):
            raise ValueError(f"gpus_per_run above 1 must be a whole number (one process per GPU), got {self.gpus_per_run:g}")
        if self.address is not None and (self.num_cpus is not None or self.num_gpus is not None):
            raise ValueError("num_cpus and num_gpus size a local Ray instance; an existing cluster (address) has its own")
        return self


class SlurmParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    """The partition (sbatch --partition); default: the cluster's default partition."""
    time_min: int = Field(default=240, ge=1)
    """Each job's time limit in minutes. A run that reaches it is requeued (up to max_requeues times) and resumes from its
    last checkpoint."""
    gpus_per_run: int = Field(default=0, ge=0)
    """GPUs per run (--gpus-per-node); 2 or more starts the run through accelerate launch, one process per GPU."""
    cpus_per_run: int = Field(default=1, ge=1)
    """CPUs per run (--cpus-per-task); the run uses that many threads."""
    mem_gb: float | None = Field(default=None, gt=0)
    """Memory per run (--mem); default: the partition's default."""
    array_parallelism: int = Field(default=256, ge=1)
    """At most this many of the study's runs at once (the job array's %N)."""
    max_requeues: int = Field(default=3, ge=0)
    """How many times a run that reaches its time limit (or is preempted) is requeued to continue from its checkpoint."""
    signal_delay_s: int = Field(default=120, ge=10)
    """How long before the time limit a job is told to requeue itself."""
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    job_name: str = Field(default="fomo-study", pattern=r"^[A-Za-z0-9._-]+$")
    setup: list[str] = Field(default_factory=list)
    """Shell lines each job runs first, e.g. ["module load cuda", "source ~/venvs/fomo/bin/activate"]."""
    additional: dict[str, str | int | bool] = Field(default_factory=dict)
    """Other sbatch options by name, e.g. {"mail-type": "END", "reservation": "ml"}."""
    cluster: Literal["slurm", "local"] = "slurm"
    """slurm: submit with sbatch. local: run the same jobs on this machine with submitit's local executor (no Slurm;
    time limits, GPUs, CPUs and setup apply, the Slurm-only options must stay unset)."""
    poll_s: float = Field(default=15.0, gt=0)
    """How often the sweep asks the cluster whether jobs ended (Slurm's accounting is rate-limited)."""

    @model_validator(mode="after")
    def _options_apply(self) -> SlurmParams:
        if self.cluster == "local":
            given = [name for name in SLURM_ONLY if getattr(self, name)]
            if given:
                raise ValueError(f"{', '.join(given)}: Slurm options, but cluster = 'local' runs without Slurm")
        return self
