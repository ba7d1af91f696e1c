"""The continual loop: stream, data mixture, training, merging, evaluation, checkpoints."""
