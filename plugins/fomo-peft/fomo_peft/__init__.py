"""LoRA, DoRA and VeRA adapters for fomo-host, through the peft library."""
