"""Model builders, one module per family; shared blocks in `layers.py`."""
