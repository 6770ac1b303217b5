"""Torch-free utilities: file writing, images, configs, metrics."""
