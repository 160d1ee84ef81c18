"""Datasets: the embedded proxies (Fashion-MNIST from Debian, moving Fashion-MNIST clips made from it)."""
