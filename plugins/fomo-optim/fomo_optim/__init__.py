"""Optimizers for fomo-host: AdamW, 8-bit AdamW (bitsandbytes), GaLore (galore-torch), schedule-free AdamW (schedulefree)."""
