"""Training: run directories (this module's `run.py`); the loops build on them."""
