"""Resize by a Tensor of scales, exported as two matrix products instead of ONNX ``Resize``.

Resizing is separable: ``Y = Wh . X . Ww^T`` with one interpolation matrix per axis
(:mod:`.interpolation`). ONNX Runtime's cubic ``Resize`` kernel is slow; a dense ``MatMul``
runs near the CPU's peak. The graph builds both matrices from ``Shape(x)`` and the factor, so
the factor stays a graph input.

Precision. An engine running the graph in bfloat16 or float16 (OpenVINO's default on CPUs
with bf16) rounds every float tensor, the factor included, except what it keeps in float32:
integer tensors, and the ``scales`` input of ``Resize``, which ONNX types as float32 whatever
the data type and OpenVINO reads in float32. Float arithmetic on sizes and coordinates then
goes wrong (bfloat16 holds 289 as 288: 289 px x 3 came out 864 px). So the factor reaches
the graph only as the ``scales`` of ``Resize`` nodes, wired directly (a node in between would
be rounded), every size and index is integer arithmetic, and every weight is computed by the
engine's own ``Resize`` in float32, then rounded once:

* ``out``: the shapes of ``Resize`` applied to a one pixel wide column and row of the image,
  the engine's own size rule at almost no cost;
* per axis, ``Resize`` of ``P`` *residue planes* of length ``in`` (plane ``p`` is 1 at the
  indices ``k`` with ``k mod P == p``) gives, for output ``j``, the total weight of the taps of
  ``j`` at indices of each residue. The taps of ``j`` lie in a window of ``P`` consecutive
  indices starting at ``floor(j * in / out) - c - 2`` with ``c = ceil(in / out)``, whose
  residues are all different; so ``W[j, k]`` is plane ``k mod P`` at ``j`` inside the window
  and 0 outside. With ``P = 2c + 5`` the window holds the taps of every mode (cubic's four,
  clamped at the borders) for each coordinate transformation, whatever rule the engine used
  to round ``out``: the coordinate ``x`` of ``j`` lies between ``j * in / out - c - 1/2`` and
  ``j * in / out + c``.
* each plane tensor has a second, constant axis (the other axis's scale applies to it) of
  length ``D``, from that axis: ``ceil(in / (out - in))`` where it grows, else ``c`` (so 1
  where it keeps its length). It is never emptied, and keeps its length exactly when the
  other axis does, so the planes keep their whole shape exactly when the image does: ONNX
  Runtime, which copies a tensor that keeps its shape whatever the scale, copies them then,
  and the matrices follow its rule for the image.

On ONNX Runtime the weights are those of ONNX Runtime's ``Resize``, so the result equals it
within float32 rounding; on any engine it is that engine's ``Resize`` as two products.

Scales reach ``Resize`` unchanged when they hold ``[1, 1, scale_h, scale_w]``, or with the
``axes`` attribute (opset 18+) for ``[scale_h, scale_w]``. Before opset 18 a 2-element factor
needs a ``Concat``, which an engine running in bf16 rounds (exact only for bf16 factors such
as 2, 3 or 2.5).

One builder (:func:`_build_graph`) writes the nodes for both exporters through a small
emitter. Eager mode is :func:`~mmdeploy_srcnn.ops.dynamic_resize` itself (validation, the
float32 size rule and :func:`~mmdeploy_srcnn.ops.interpolation.resize`, the same matrix
product), so every path of the project shares one definition of the result.
"""
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.onnx import symbolic_helper

from mmdeploy_srcnn.core import SYMBOLIC_REWRITER
from mmdeploy_srcnn.ops.dynamic_resize import (AXES_MIN_OPSET, DYNAMO_MIN_OPSET,
                                               TORCHSCRIPT_MIN_OPSET, dynamic_resize,
                                               fake_resize_output, resize_attributes)

_OP_NAME = 'mmdeploy_srcnn::matmul_resize'
_FLOAT = 1  # onnx.TensorProto.FLOAT, for Cast
_SHAPE_START_MIN_OPSET = 15  # Shape's ``start`` attribute
_UNSQUEEZE_INPUT_MIN_OPSET = 13  # Unsqueeze's axes as an input, not an attribute
_INT_MIN_MAX_OPSET = 12  # Min and Max of integers

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
    """What :func:`_build_graph` needs from an exporter: nodes, constants and the opset."""

    opset: int

    def op(self, op_type: str, *inputs: Any, **attrs: Any) -> Any:
        """Add an ONNX node; returns its output."""

    def const(self, value: Union[Scalar, Sequence[Scalar]], dtype: torch.dtype) -> Any:
        """A scalar (Python number) or 1-D (list) constant of ``dtype`` (float32 or int64)."""

    def no_input(self) -> Any:
        """An omitted optional input (``Resize``'s ``roi``)."""


def _ints(e: _Emitter, value: Union[int, Sequence[int]]) -> Any:
    return e.const(value, torch.int64)


def _shape(e: _Emitter, x: Any, start: int, end: int) -> Any:
    """``Shape(x)[start:end]`` (int64)."""
    if e.opset >= _SHAPE_START_MIN_OPSET:
        return e.op('Shape', x, start=start, end=end)
    return e.op('Slice', e.op('Shape', x), _ints(e, [start]), _ints(e, [end]))


def _unsqueeze(e: _Emitter, x: Any, axes: List[int]) -> Any:
    if e.opset >= _UNSQUEEZE_INPUT_MIN_OPSET:
        return e.op('Unsqueeze', x, _ints(e, axes))
    return e.op('Unsqueeze', x, axes=axes)


def _extreme(e: _Emitter, op_type: str, a: Any, b: Any) -> Any:
    """``Max`` or ``Min`` of int64 tensors (before opset 12 through ``Where``)."""
    if e.opset >= _INT_MIN_MAX_OPSET:
        return e.op(op_type, a, b)
    return e.op('Where', e.op('Greater' if op_type == 'Max' else 'Less', a, b), a, b)


def _ceil_div(e: _Emitter, minus_one: Any, divisor: Any) -> Any:
    """``ceil(a / divisor)`` for ``a > 0`` and ``divisor > 0``, given ``minus_one = a - 1``."""
    return e.op('Add', e.op('Div', minus_one, divisor), _ints(e, 1))


def _resizers(e: _Emitter, scales: Any, scale_count: int,
              attrs: Dict[str, Any]) -> Tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Two ``Resize`` functions of a 4-D tensor: the factor on axes (2, 3), and swapped onto
    axes (3, 2). The weights of either image axis are then computed along axis 2, ONNX
    Runtime's faster direction for cubic."""
    roi = e.no_input()
    if e.opset >= AXES_MIN_OPSET:  # the factor goes in unchanged, whatever its length
        batch_channels = [0, 1] if scale_count == 4 else []

        def along(axes: List[int]) -> Callable[[Any], Any]:
            return lambda data: e.op('Resize', data, roi, scales, axes=batch_channels + axes,
                                     **attrs)
        return along([2, 3]), along([3, 2])
    full = scales if scale_count == 4 else e.op(
        'Concat', e.const([1.0, 1.0], torch.float32), scales, axis=0)
    swapped = e.op('Gather', full, _ints(e, [0, 1, 3, 2]))
    return (lambda data: e.op('Resize', data, roi, full, **attrs),
            lambda data: e.op('Resize', data, roi, swapped, **attrs))


def _axis_matrix(e: _Emitter, resize: Callable[[Any], Any], in_len: Any, out_len: Any,
                 planes: Any, lead: Any, other_len: Any) -> Any:
    """``(1, in, out)`` weights of one axis, ``W^T`` (module docstring).

    Scalars of this axis (int64): ``planes`` = P, ``lead`` = c + 2 (how far the window starts
    below ``floor(j * in / out)``), and ``other_len`` = D as a 1-element tensor.
    """
    zero, one = _ints(e, 0), _ints(e, 1)
    index = e.op('Range', zero, in_len, one)  # k
    residue = e.op('Mod', index, planes)
    pattern = e.op('OneHot', residue, planes, e.const([0.0, 1.0], torch.float32), axis=0)
    pattern = e.op('Expand', _unsqueeze(e, pattern, [0, 3]), other_len)  # (1, P, in, D)
    weights = e.op('Gather', resize(pattern), zero, axis=3)  # (1, P, out)
    weights = e.op('Gather', weights, residue, axis=1)  # (1, in, out): plane of k's residue
    start = e.op('Sub', e.op('Div', e.op('Mul', e.op('Range', zero, out_len, one), in_len),
                             out_len), lead)  # (out,): first index of each window
    offset = e.op('Sub', _unsqueeze(e, index, [1]), start)  # (in, out): k - start
    inside = e.op('Equal', e.op('Mod', offset, planes), offset)  # 0 <= offset < P
    return e.op('Where', inside, weights, e.const(0.0, torch.float32))


def _build_graph(e: _Emitter, x: Any, scales: Any, scale_count: int, mode: str,
                 align_corners: bool) -> Any:
    """``Wh . x . Ww^T`` with both matrices computed from ``Shape(x)`` and ``scales``."""
    along_h, along_w = _resizers(e, scales, scale_count, resize_attributes(mode, align_corners))
    one = _ints(e, 1)
    in_hw = _shape(e, x, 2, 4)
    # Output sizes: the engine's own rule, from one pixel wide slices of the image.
    starts, ends = _ints(e, [0, 0, 0]), _ints(e, [1, 1, 1])
    column, row = (e.op('Slice', x, starts, ends, _ints(e, axes))
                   for axes in ([0, 1, 3], [0, 1, 2]))  # (1, 1, in_h, 1), (1, 1, 1, in_w)
    out_hw = e.op('Concat', _shape(e, along_h(column), 2, 3), _shape(e, along_h(row), 3, 4),
                  axis=0)
    # Max: an empty output must not divide by zero (integer division can kill the process).
    out_hw = _extreme(e, 'Max', out_hw, one)
    in_minus_one = e.op('Sub', in_hw, one)
    spread = _ceil_div(e, in_minus_one, out_hw)  # c
    lead = e.op('Add', spread, _ints(e, 2))
    planes = e.op('Add', e.op('Add', lead, lead), one)  # P = 2c + 5
    # D: ceil(in / (out - in)) where the axis grows, else c (1 where it keeps its length).
    growth = _extreme(e, 'Max', e.op('Sub', out_hw, in_hw), one)
    other_len = e.op('Where', e.op('Greater', out_hw, in_hw),
                     _ceil_div(e, in_minus_one, growth), spread)
    matrices = []
    for axis, resize in enumerate((along_h, along_w)):
        scalars = [e.op('Gather', vector, _ints(e, axis))
                   for vector in (in_hw, out_hw, planes, lead)]
        matrices.append(_axis_matrix(e, resize, *scalars,
                                     e.op('Gather', other_len, _ints(e, [1 - axis]))))
    height = e.op('Transpose', matrices[0], perm=[0, 2, 1])  # (1, out_h, in_h)
    return e.op('MatMul', e.op('MatMul', height, x), matrices[1])


# ---- TorchScript exporter -------------------------------------------------------------------

class _TorchScriptEmitter:
    _SUFFIX = {int: '_i', float: '_f', str: '_s', list: '_i'}

    def __init__(self, g: Any) -> None:
        self._g = g
        self.opset: int = g.opset
        self._constants: Dict[Tuple[Any, torch.dtype], Any] = {}

    def op(self, op_type: str, *inputs: Any, **attrs: Any) -> Any:
        suffixed = {key + self._SUFFIX[type(value)]: value for key, value in attrs.items()}
        return self._g.op(op_type, *inputs, **suffixed)

    def const(self, value: Union[Scalar, Sequence[Scalar]], dtype: torch.dtype) -> Any:
        key = (tuple(value) if isinstance(value, (list, tuple)) else value, dtype)
        if key not in self._constants:  # one node per value
            self._constants[key] = self._g.op('Constant', value_t=torch.tensor(value, dtype=dtype))
        return self._constants[key]

    def no_input(self) -> Any:
        return self.const([], torch.float32)


@SYMBOLIC_REWRITER.register_symbolic(_OP_NAME, opset=TORCHSCRIPT_MIN_OPSET)
@symbolic_helper.parse_args('v', 'v', 's', 'b')
def _matmul_resize_symbolic(g: Any, x: Any, scales: Any, mode: str, align_corners: bool) -> Any:
    if scales.type().scalarType() != 'Float':
        scales = g.op('Cast', scales, to_i=_FLOAT)
    count = 4 if symbolic_helper._get_tensor_sizes(scales) == [4] else 2
    return _build_graph(_TorchScriptEmitter(g), x, scales, count, mode, align_corners)


# ---- dynamo exporter ------------------------------------------------------------------------

class _OnnxScriptEmitter:
    opset = 18  # the onnxscript opset used below

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

    def no_input(self) -> Optional[Any]:
        return None


@SYMBOLIC_REWRITER.register_symbolic(_OP_NAME, exporter='dynamo', opset=DYNAMO_MIN_OPSET)
def _translate_matmul_resize(x: Any, scales: Any, mode: str, align_corners: bool) -> Any:
    """The same graph as the TorchScript symbolic, built with onnxscript."""
    count = 4 if scales.shape[0] == 4 else 2
    return _build_graph(_OnnxScriptEmitter(), x, scales, count, mode, align_corners)


__all__: List[str] = ['matmul_resize']
