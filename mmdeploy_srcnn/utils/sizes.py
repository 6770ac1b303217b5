"""The one output-size rule used everywhere: ONNX Resize's.

ONNX Runtime computes ``floor(in * scale)`` in float32; PyTorch's ``F.interpolate`` does it in
float64. The two disagree for scales that float32 cannot hold exactly (10 px x 2.3: ONNX 23,
PyTorch 22). The deployed model follows ONNX, so the eager reference, the app and tiling all
use this function.

A resize that does not change the size is not run by the engines: ONNX Runtime 1.32 and
OpenVINO 2026.4 return the input unchanged when ``floor(in * scale) == in`` (400 px at x1.002:
a copy, where PyTorch resamples and differs by up to 0.79 on noise in [0, 1]). Runs must
therefore give every side that is scaled at least :func:`smallest_enlarged_length` pixels.
"""
from typing import List, Sequence

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


def smallest_enlarged_length(scale: float) -> int:
    """The fewest pixels ``n`` for which a Resize by ``scale`` (> 1) adds a pixel, i.e.
    ``resized_length(n, scale) > n`` (500 at x1.002, 1 at x2)."""
    scale32 = float(np.float32(scale))
    if not scale32 > 1:
        raise ValueError(f'scale {scale:g} does not enlarge')
    length = max(int(1 / (scale32 - 1)) - 2, 1)  # float32 rounding: start just below
    while resized_length(length, scale32) <= length:
        length += 1
    return length


def unenlarged_sides(size_hw: Sequence[int], scale_hw: Sequence[float]) -> List[int]:
    """The sides (0: height, 1: width) whose factor is above 1 but adds no pixel: engines copy
    them where the model would resample them."""
    return [axis for axis, (length, factor) in enumerate(zip(size_hw, scale_hw))
            if factor > 1 and resized_length(length, factor) == length]
