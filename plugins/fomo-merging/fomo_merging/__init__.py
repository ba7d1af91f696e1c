"""Model merging operators and merge schedules for fomo-host."""
