"""open_clip models for fomo-host."""
