"""CSV and TensorBoard loggers for fomo-host, written through the lifecycle hooks."""
