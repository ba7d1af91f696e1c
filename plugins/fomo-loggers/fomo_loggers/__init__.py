"""CSV, TensorBoard, Weights & Biases and MLflow loggers for fomo-host, written through the lifecycle hooks."""
