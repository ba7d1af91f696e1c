"""Full and selective fine-tuning methods for fomo-host."""
