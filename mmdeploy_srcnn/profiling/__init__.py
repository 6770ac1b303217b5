"""Measuring tools, torch-free: timing, memory, FLOP counts, ONNX Runtime's node split."""
