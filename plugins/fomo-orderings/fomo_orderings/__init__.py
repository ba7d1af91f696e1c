"""Stream orderings for fomo-host."""
