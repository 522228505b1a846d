"""convoscope."""
