"""The one output-size rule used everywhere: ONNX Resize's.

ONNX Runtime computes ``floor(in * scale)`` in float32; PyTorch's ``F.interpolate`` does it in
float64. The two disagree for scales that float32 cannot hold exactly (10 px x 2.3: ONNX 23,
PyTorch 22). The deployed model follows ONNX, so the eager reference, the app and tiling all
use this function.
"""
import numpy as np


def resized_length(length: int, scale: float) -> int:
    """Output length of a Resize of ``length`` pixels by ``scale``, computed in float32."""
    return int(np.floor(np.float32(length) * np.float32(scale)))
