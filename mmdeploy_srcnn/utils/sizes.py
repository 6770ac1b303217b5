"""The one output-size rule used everywhere: ONNX Resize's.

ONNX Runtime computes ``floor(in * scale)`` in float32; PyTorch's ``F.interpolate`` does it in
float64. The two disagree for scales that float32 cannot hold exactly (10 px x 2.3: ONNX 23,
PyTorch 22). The deployed model follows ONNX, so the eager reference, the app and tiling all
use this function.
"""
import numpy as np


def resized_length(length: int, scale: float) -> int:
    """Output length of a Resize of ``length`` pixels by ``scale``, computed in float32.

    Raises ``ValueError`` when the length overflows float32 (e.g. 10 px x 3.4e38).
    """
    with np.errstate(over='ignore'):
        product = np.float32(length) * np.float32(scale)
    if not np.isfinite(product):
        raise ValueError(f'{length} px x {scale:g} overflows (the output size is not finite)')
    return int(np.floor(product))
