"""MATLAB-style ``imresize`` (bicubic, a = -0.5, antialiased when shrinking), in numpy.

This is the low-resolution generator of the standard SR evaluation protocol: SR papers make LR
images with MATLAB's ``imresize(hr, 1/scale)`` and report bicubic baselines with
``imresize(lr, scale)``. OpenCV's and PyTorch's bicubic differ from it (a = -0.75, no
antialiasing), so published numbers are only reproducible with this kernel.

Each axis is resized by one matrix product with a dense (out x in) weight matrix, which keeps
the code vectorised; the matrices are small (at most a few thousand squared). Torch-free.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np

_KERNEL_WIDTH = 4.0  # support of the cubic kernel, in input pixels at scale 1


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len, in_len) float64 matrix that resizes one axis like MATLAB's ``imresize``.

    ``scale`` is output/input (< 1 shrinks). When shrinking with ``antialias`` the kernel is
    stretched by 1/scale, which low-pass filters the image. Out-of-range taps are mirrored
    (symmetric padding), and every row sums to 1.
    """
    if in_len < 1 or out_len < 1 or scale <= 0:
        raise ValueError(f'invalid resize: {in_len} -> {out_len} at scale {scale}')
    stretch = 1.0 / scale if (antialias and scale < 1) else 1.0
    width = _KERNEL_WIDTH * stretch
    # Centre of each output pixel in input coordinates (1-based, half-pixel aligned).
    out_pos = np.arange(1, out_len + 1, dtype=np.float64)
    centre = out_pos / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(centre - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # (out_len, taps), 1-based
    weights = cubic((centre[:, None] - indices) / stretch) / stretch
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding: ..., 2, 1 | 1, 2, ..., n | n, n-1, ...
    period = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    columns = period[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], columns.shape)
    np.add.at(matrix, (rows, columns), weights)
    return matrix


Size = Tuple[int, int]
Scales = Tuple[float, float]


def _output_shape(shape: Sequence[int], scale: Optional[Scales],
                  output_shape: Optional[Size]) -> Tuple[Size, Scales]:
    if (scale is None) == (output_shape is None):
        raise ValueError('give exactly one of scale or output_shape')
    if output_shape is not None:
        out_h, out_w = (int(v) for v in output_shape)
        return (out_h, out_w), (out_h / shape[0], out_w / shape[1])
    scale_h, scale_w = scale
    return (math.ceil(shape[0] * scale_h), math.ceil(shape[1] * scale_w)), (scale_h, scale_w)


def imresize(image: np.ndarray, scale: Optional[float] = None,
             output_shape: Optional[Tuple[int, int]] = None,
             antialias: bool = True) -> np.ndarray:
    """Resize an H x W or H x W x C image like MATLAB's ``imresize(image, scale, 'bicubic')``.

    Args:
        image: uint8 or float array.
        scale: output/input size ratio, the same for both axes (0.5 halves the image); the output
            size is ``ceil(size * scale)`` and the kernel uses ``scale`` itself.
        output_shape: ``(out_h, out_w)`` instead of ``scale``; the scale is then out/in per axis.
        antialias: widen the kernel when shrinking (MATLAB's default).

    Returns:
        uint8 input gives uint8 output (rounded and clipped, as MATLAB does); any other input
        gives float64 output, not clipped (bicubic overshoots).
    """
    if image.ndim not in (2, 3):
        raise ValueError(f'expected an H x W or H x W x C image, got shape {image.shape}')
    (out_h, out_w), (scale_h, scale_w) = _output_shape(
        image.shape, None if scale is None else (scale, scale), output_shape)
    rows = resize_matrix(image.shape[0], out_h, scale_h, antialias)
    cols = resize_matrix(image.shape[1], out_w, scale_w, antialias)
    data = image.astype(np.float64)  # both axes in float64: no intermediate rounding
    data = np.tensordot(rows, data, axes=(1, 0))
    data = np.moveaxis(np.tensordot(cols, data, axes=(1, 1)), 0, 1)
    if image.dtype == np.uint8:
        return np.clip(np.round(data), 0, 255).astype(np.uint8)
    return data
