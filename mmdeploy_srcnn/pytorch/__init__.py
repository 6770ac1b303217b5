"""Rewrites of PyTorch functions; importing this package registers them."""
from . import functions  # noqa: F401
