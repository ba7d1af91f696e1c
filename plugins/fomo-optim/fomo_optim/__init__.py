"""Optimizer-based update methods for fomo-host: GaLore."""
