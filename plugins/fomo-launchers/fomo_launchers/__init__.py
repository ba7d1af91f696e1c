"""Launchers for fomo-host studies: ``local`` (subprocesses), ``ray`` (Ray tasks) and ``slurm`` (submitit jobs)."""
