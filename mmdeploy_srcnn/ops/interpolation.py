"""ONNX ``Resize`` semantics as per-axis interpolation matrices, in PyTorch.

Resizing an NCHW image is separable: ``Y = Wh . X . Ww^T`` where ``Wh`` (out_h x in_h) holds,
for each output row, the weights of the input rows it reads. Building the matrices from the
ONNX formulas (coordinates in float32, the pytorch_half_pixel / align_corners transforms,
clamped taps, cubic a = -0.75) reproduces ONNX Runtime's Resize for every size. One short cut
is ONNX Runtime's own and kept: an output of the input's shape is a copy, whatever the scale
(2 px x 1.1 is 2 px). ATen copies per axis instead (2x1 px x (1.1, 2) copies the rows, where
ONNX Runtime interpolates them), which is why the eager path does not call ATen's kernels.
"""
import torch
from torch import Tensor

CUBIC_A = -0.75  # PyTorch's bicubic kernel, and what the exporter writes into the graph


def source_coordinates(out_length: int, in_length: int, scale: float,
                       align_corners: bool) -> Tensor:
    """Input coordinate each output index samples (float32, as ONNX Runtime computes it)."""
    index = torch.arange(out_length, dtype=torch.float32)
    if align_corners:
        if out_length == 1:
            return torch.zeros(1)
        return index * (float(in_length - 1) / float(out_length - 1))
    if out_length == 1:  # pytorch_half_pixel: a single output samples the first input
        return torch.zeros(1)
    return (index + 0.5) / torch.tensor(scale, dtype=torch.float32) - 0.5


def _cubic_weights(t: Tensor) -> Tensor:
    """Weights of the taps at offsets -1, 0, 1, 2 for fractional positions ``t``."""
    a = CUBIC_A
    distances = torch.stack([t + 1, t, 1 - t, 2 - t], dim=-1).abs()
    near = ((a + 2) * distances - (a + 3)) * distances * distances + 1
    far = ((a * distances - 5 * a) * distances + 8 * a) * distances - 4 * a
    return torch.where(distances <= 1, near, far)


def interpolation_matrix(out_length: int, in_length: int, scale: float, mode: str,
                         align_corners: bool) -> Tensor:
    """``(out_length, in_length)`` float32 weights such that ``out = W @ in`` along one axis.

    ``mode``: ``'nearest'`` (asymmetric, floor), ``'bilinear'`` or ``'bicubic'``.
    """
    matrix = torch.zeros(out_length, in_length, dtype=torch.float32)
    rows = torch.arange(out_length)
    if mode == 'nearest':
        scale_f32 = torch.tensor(scale, dtype=torch.float32)
        x = torch.arange(out_length, dtype=torch.float32) / scale_f32
        matrix[rows, torch.floor(x).long().clamp(0, in_length - 1)] = 1.0
        return matrix
    x = source_coordinates(out_length, in_length, scale, align_corners)
    if mode == 'bilinear':
        x = x.clamp(0, in_length - 1)
        left = torch.floor(x)
        frac = x - left
        left = left.long()
        right = (left + 1).clamp(max=in_length - 1)
        matrix.index_put_((rows, left), 1 - frac, accumulate=True)
        matrix.index_put_((rows, right), frac, accumulate=True)
        return matrix
    left = torch.floor(x)
    weights = _cubic_weights(x - left)
    for tap in range(4):
        columns = (left.long() + tap - 1).clamp(0, in_length - 1)
        matrix.index_put_((rows, columns), weights[:, tap], accumulate=True)
    return matrix


def resize(x: Tensor, size: tuple, scales: tuple, mode: str, align_corners: bool) -> Tensor:
    """Resize NCHW ``x`` to ``size`` sampling at ``scales`` (ONNX semantics)."""
    in_h, in_w = x.shape[2], x.shape[3]
    if tuple(size) == (in_h, in_w):
        return x.clone()
    if mode == 'nearest':
        rows = interpolation_matrix(size[0], in_h, scales[0], mode, False).argmax(dim=1)
        cols = interpolation_matrix(size[1], in_w, scales[1], mode, False).argmax(dim=1)
        return x.index_select(2, rows).index_select(3, cols)
    weight_h = interpolation_matrix(size[0], in_h, scales[0], mode, align_corners)
    weight_w = interpolation_matrix(size[1], in_w, scales[1], mode, align_corners)
    return torch.matmul(torch.matmul(weight_h.to(x.dtype), x), weight_w.to(x.dtype).t())
