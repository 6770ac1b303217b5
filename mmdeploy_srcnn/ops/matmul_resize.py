"""Resize by a Tensor of scales, exported as two matrix products instead of ONNX ``Resize``.

Resizing is separable: ``Y = Wh . X . Ww^T`` with one interpolation matrix per axis
(:mod:`.interpolation`). ONNX Runtime's cubic ``Resize`` kernel is slow (40-53% of an SRCNN
run at 256 -> 768); a dense ``MatMul`` runs near the CPU's peak. This op builds both matrices
inside the graph from ``Shape(x)`` and ``scales``, so the factor stays a graph input:

* per axis: ``out = Floor(in * scale)`` in float32 (ONNX Runtime's size rule), the sampling
  coordinate of every output index (``pytorch_half_pixel``, ``align_corners`` or, for nearest,
  ``asymmetric`` + floor), the clamped tap indices ``Clip(Floor(coord) + offsets)``, the kernel
  weights of each tap (cubic a = -0.75, linear, or one tap of weight 1 for nearest), then
  ``OneHot`` of the taps reduced with the weights by a small batched ``MatMul`` into the
  ``(out, in)`` matrix;
* ONNX Runtime's same-shape rule: an output of the input's shape is a copy whatever the scale,
  so both matrices become ``EyeLike`` identities then (``Where``);
* ``MatMul(MatMul(Wh, X), Transpose(Ww))``.

A 4-element ``scales`` contributes its last two values only (batch and channel scales must be
1, which eager mode checks). The dense products cost ``C * in_w * (in_h + out_w) / out_w``
multiply-adds per output pixel: 1,024 for RGB 256 -> 768, 5% of SRCNN's 20,000, at near the
CPU's matmul peak. The share grows with the image width (18% for 960x540 -> 1920x1080),
where a banded product would be cheaper.

OpenVINO must run the graph in f32: in bf16 the coordinates and tap indices are off by pixels
(the deploy config check refuses that). In f32 its ``Div`` is not correctly rounded, which
:func:`_divide` corrects, so the coordinates are the same float32 numbers on every engine.

One builder (:func:`_build_graph`) writes the nodes for both exporters through a two-method
emitter. Eager mode is :func:`~mmdeploy_srcnn.ops.dynamic_resize` itself (validation, the
float32 size rule and :func:`~mmdeploy_srcnn.ops.interpolation.resize`, the same matrix
product), so every path of the project shares one definition of the result.
"""
import functools
import warnings
from typing import Any, Callable, Dict, List, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.onnx import symbolic_helper

from mmdeploy_srcnn.ops.dynamic_resize import (TORCHSCRIPT_MIN_OPSET, dynamic_resize,
                                               fake_resize_output, resize_attributes)
from mmdeploy_srcnn.ops.interpolation import CUBIC_A

_OP_NAME = 'mmdeploy_srcnn::matmul_resize'
_FLOAT, _INT64 = 1, 7  # onnx.TensorProto data types, for Cast
# Tap offsets from floor(coordinate), per mode.
_TAP_OFFSETS = {'nearest': [0.0], 'bilinear': [0.0, 1.0], 'bicubic': [-1.0, 0.0, 1.0, 2.0]}

Scalar = Union[float, int]


@torch.library.custom_op(_OP_NAME, mutates_args=())
def _matmul_resize_op(x: Tensor, scales: Tensor, mode: str, align_corners: bool) -> Tensor:
    return dynamic_resize(x, scales, mode, align_corners)


_matmul_resize_op.register_fake(fake_resize_output)


def matmul_resize(x: Tensor, scales: Tensor, mode: str = 'bicubic',
                  align_corners: bool = False) -> Tensor:
    """Resize NCHW ``x`` by ``scales`` (``[scale_h, scale_w]`` or ``[1, 1, scale_h, scale_w]``).

    Same result as :func:`~mmdeploy_srcnn.ops.dynamic_resize`; exports to the matrix-product
    graph described in the module docstring instead of one ``Resize`` node.
    """
    resize_attributes(mode, align_corners)  # raises for a bad mode/align_corners, also in tracing
    return _matmul_resize_op(x, scales, mode, bool(align_corners))


# ---- the graph, written once for both exporters ---------------------------------------------

class _Emitter(Protocol):
    """What :func:`_build_graph` needs from an exporter: nodes and constants."""

    def op(self, op_type: str, *inputs: Any, **attrs: Any) -> Any:
        """Add an ONNX node; returns its output."""

    def const(self, value: Union[Scalar, Sequence[Scalar]], dtype: torch.dtype) -> Any:
        """A scalar (Python number) or 1-D (list) constant of ``dtype`` (float32 or int64)."""


def _cubic_weights(e: _Emitter, d: Any) -> Any:
    """PyTorch's cubic kernel at distances ``d``, in :mod:`.interpolation`'s operation order."""
    a = CUBIC_A
    c = {value: e.const(value, torch.float32)
         for value in (a, a + 2, a + 3, 5 * a, 8 * a, 4 * a, 1.0)}
    mul, add, sub = (functools.partial(e.op, name) for name in ('Mul', 'Add', 'Sub'))
    near = add(mul(mul(sub(mul(c[a + 2], d), c[a + 3]), d), d), c[1.0])  # |d| <= 1
    far = sub(mul(add(mul(sub(mul(c[a], d), c[5 * a]), d), c[8 * a]), d), c[4 * a])
    return e.op('Where', e.op('Greater', d, c[1.0]), far, near)


def _split(e: _Emitter, x: Any) -> Tuple[Any, Any]:
    """Veltkamp's split of float32 ``x`` into ``hi + lo``, each with at most 12 significant
    bits, so that products of two halves are exact."""
    scaled = e.op('Mul', x, e.const(4097.0, torch.float32))  # 2^12 + 1
    hi = e.op('Sub', scaled, e.op('Sub', scaled, x))
    return hi, e.op('Sub', x, hi)


def _divide(e: _Emitter, a: Any, b: Any) -> Any:
    """``a / b`` correctly rounded in float32, as ONNX Runtime's ``Div`` and eager compute it.

    OpenVINO computes ``Div`` as ``a * (1 / b)``, an ulp off in about a quarter of the cases:
    that moves sample coordinates (outputs off by up to 7e-5 at 512 px) and makes nearest read
    the neighbouring pixel where ``j / scale`` is a whole number (5 / 2.5). One Newton step
    fixes it: ``q + (a - q * b) / b``, with the residual computed exactly (Dekker's
    product of the split halves). Exact on both engines over 1.7M checked (a, b) pairs.
    """
    quotient = e.op('Div', a, b)
    product = e.op('Mul', quotient, b)
    (q_hi, q_lo), (b_hi, b_lo) = _split(e, quotient), _split(e, b)
    error = e.op('Sub', e.op('Mul', q_hi, b_hi), product)  # product + error == quotient * b
    for first, second in ((q_hi, b_lo), (q_lo, b_hi), (q_lo, b_lo)):
        error = e.op('Add', error, e.op('Mul', first, second))
    residual = e.op('Sub', e.op('Sub', a, product), error)
    return e.op('Add', quotient, e.op('Div', residual, b))


def _coordinates(e: _Emitter, index: Any, in_len: Any, out_len: Any, scale: Any, mode: str,
                 align_corners: bool) -> Any:
    """Input coordinate sampled by each output ``index`` (float32, ONNX Runtime's formulas)."""
    zero, one = e.const(0.0, torch.float32), e.const(1.0, torch.float32)
    if mode == 'nearest':  # asymmetric
        return _divide(e, index, scale)
    if align_corners:
        ratio = _divide(e, e.op('Sub', in_len, one), e.op('Sub', out_len, one))
        coord = e.op('Mul', index, ratio)
    else:  # pytorch_half_pixel
        half = e.const(0.5, torch.float32)
        coord = e.op('Sub', _divide(e, e.op('Add', index, half), scale), half)
    # A single output samples the first input (and align_corners would divide by zero).
    return e.op('Where', e.op('Greater', out_len, one), coord, zero)


def _axis_matrix(e: _Emitter, in_len_int: Any, scale: Any, mode: str,
                 align_corners: bool) -> Tuple[Any, Any, Any]:
    """The ``(out, in)`` interpolation matrix of one axis, with ``out`` and ``in`` as floats."""
    zero, one = e.const(0.0, torch.float32), e.const(1.0, torch.float32)
    in_len = e.op('Cast', in_len_int, to=_FLOAT)
    out_len = e.op('Floor', e.op('Mul', in_len, scale))  # ONNX Runtime's float32 size rule
    index = e.op('Range', zero, out_len, one)
    coord = _coordinates(e, index, in_len, out_len, scale, mode, align_corners)
    last = e.op('Sub', in_len, one)
    if mode == 'bilinear':
        coord = e.op('Clip', coord, zero, last)
    left = e.op('Floor', coord)
    column = e.const([-1, 1], torch.int64)
    offsets = e.const(_TAP_OFFSETS[mode], torch.float32)
    taps = e.op('Clip', e.op('Add', e.op('Reshape', left, column), offsets), zero, last)
    one_hot = e.op('OneHot', e.op('Cast', taps, to=_INT64), in_len_int,
                   e.const([0.0, 1.0], torch.float32))  # (out, taps, in)
    if mode == 'nearest':  # one tap of weight 1
        return e.op('Reshape', one_hot, e.const([0, -1], torch.int64)), out_len, in_len
    distance = e.op('Abs', e.op('Sub', e.op('Reshape', e.op('Sub', coord, left), column),
                                offsets))  # (out, taps)
    weights = (_cubic_weights(e, distance) if mode == 'bicubic'
               else e.op('Sub', one, distance))
    # Sum over taps of weight x one-hot row: (out, 1, taps) @ (out, taps, in) -> (out, in).
    rows = e.op('MatMul', e.op('Reshape', weights, e.const([0, 1, -1], torch.int64)), one_hot)
    return e.op('Reshape', rows, e.const([0, -1], torch.int64)), out_len, in_len


def _build_graph(e: _Emitter, x: Any, scales: Any, scale_offset: int, mode: str,
                 align_corners: bool) -> Any:
    """``Wh . x . Ww^T`` with both matrices computed from ``Shape(x)`` and ``scales``."""
    resize_attributes(mode, align_corners)  # validates
    shape = e.op('Shape', x)
    matrices, same_shape = [], []
    for axis in (0, 1):  # height, width
        in_len_int = e.op('Gather', shape, e.const(2 + axis, torch.int64))
        scale = e.op('Gather', scales, e.const(scale_offset + axis, torch.int64))
        matrix, out_len, in_len = _axis_matrix(e, in_len_int, scale, mode, align_corners)
        matrices.append(matrix)
        same_shape.append(e.op('Equal', out_len, in_len))
    # ONNX Runtime copies the input when the output has its shape, whatever the scale.
    copy = e.op('And', *same_shape)
    height, width = (e.op('Where', copy, e.op('EyeLike', matrix), matrix) for matrix in matrices)
    return e.op('MatMul', e.op('MatMul', height, x), e.op('Transpose', width, perm=[1, 0]))


# ---- TorchScript exporter -------------------------------------------------------------------

class _TorchScriptEmitter:
    _SUFFIX = {int: '_i', float: '_f', str: '_s', list: '_i'}

    def __init__(self, g: Any) -> None:
        self._g = g

    def op(self, op_type: str, *inputs: Any, **attrs: Any) -> Any:
        suffixed = {key + self._SUFFIX[type(value)]: value for key, value in attrs.items()}
        return self._g.op(op_type, *inputs, **suffixed)

    def const(self, value: Union[Scalar, Sequence[Scalar]], dtype: torch.dtype) -> Any:
        return self._g.op('Constant', value_t=torch.tensor(value, dtype=dtype))


@symbolic_helper.parse_args('v', 'v', 's', 'b')
def _matmul_resize_symbolic(g: Any, x: Any, scales: Any, mode: str, align_corners: bool) -> Any:
    if scales.type().scalarType() != 'Float':
        scales = g.op('Cast', scales, to_i=_FLOAT)
    offset = 2 if symbolic_helper._get_tensor_sizes(scales) == [4] else 0
    return _build_graph(_TorchScriptEmitter(g), x, scales, offset, mode, align_corners)


with warnings.catch_warnings():
    # Part of the (deprecated, still supported) TorchScript exporter, which we support on purpose.
    warnings.simplefilter('ignore', DeprecationWarning)
    torch.onnx.register_custom_op_symbolic(_OP_NAME, _matmul_resize_symbolic,
                                           TORCHSCRIPT_MIN_OPSET)


# ---- dynamo exporter ------------------------------------------------------------------------

class _OnnxScriptEmitter:
    def __init__(self) -> None:
        from onnxscript import opset18  # imported on use: keeps importing this module cheap
        self._opset = opset18

    def op(self, op_type: str, *inputs: Any, **attrs: Any) -> Any:
        return getattr(self._opset, op_type)(*inputs, **attrs)

    def const(self, value: Union[Scalar, Sequence[Scalar]], dtype: torch.dtype) -> Any:
        kind = 'float' if dtype == torch.float32 else 'int'
        if isinstance(value, (list, tuple)):
            return self._opset.Constant(**{f'value_{kind}s': list(value)})
        return self._opset.Constant(**{f'value_{kind}': value})


def dynamo_translation_table() -> Dict[Any, Callable]:
    """The ``custom_translation_table`` entry for ``torch.onnx.export(..., dynamo=True)``."""

    def translate_matmul_resize(x: Any, scales: Any, mode: str, align_corners: bool) -> Any:
        offset = 2 if scales.shape[0] == 4 else 0
        return _build_graph(_OnnxScriptEmitter(), x, scales, offset, mode, align_corners)

    return {torch.ops.mmdeploy_srcnn.matmul_resize.default: translate_matmul_resize}


__all__: List[str] = ['matmul_resize', 'dynamo_translation_table']
