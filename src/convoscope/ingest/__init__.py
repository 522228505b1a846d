"""Raw bytes in, canonical calls out. Pure: no store, no network."""
