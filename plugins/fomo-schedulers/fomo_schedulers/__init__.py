"""Learning-rate schedulers for fomo-host, per task and across tasks."""
