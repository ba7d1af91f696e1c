"""Regularisation methods for fomo-host: EWC, SI and distillation from the base model."""
