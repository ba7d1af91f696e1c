"""Evaluation metrics for fomo-host: zero-shot classification and image-text retrieval."""
