"""Resize by a Tensor of scales (or to a Tensor of sizes), exported as one ONNX ``Resize``.

``F.interpolate`` wants Python numbers, so tracing bakes the factor into the graph as a
constant. These operators take the factor as a Tensor instead, which becomes a graph input:

* eager: ONNX Resize's own formulas (:mod:`.interpolation`), with the output size computed by
  ONNX's float32 rule (:func:`mmdeploy_srcnn.utils.sizes.resized_length`) and the sampling grid
  from the scale itself, as ONNX Runtime does;
* TorchScript exporter: a symbolic function emitting ``Resize(x, roi='', scales)``;
* dynamo exporter: a translation of the same node.

Both are registered with :data:`~mmdeploy_srcnn.core.SYMBOLIC_REWRITER`, so they are in effect
only while a :class:`~mmdeploy_srcnn.core.RewriterContext` is open.

They are ``torch.library`` custom ops, usable directly in model code too.
"""
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.onnx import symbolic_helper

from mmdeploy_srcnn.core import SYMBOLIC_REWRITER
from mmdeploy_srcnn.ops import interpolation
from mmdeploy_srcnn.utils.sizes import resized_length

MODES = ('nearest', 'bilinear', 'bicubic')
_OP_NAMESPACE = 'mmdeploy_srcnn'
TORCHSCRIPT_MIN_OPSET = 11
DYNAMO_MIN_OPSET = 18  # the translations build opset-18 onnxscript ops
AXES_MIN_OPSET = 18  # Resize's ``axes`` attribute
# The factor must reach Resize's ``scales`` with no node in between: engines running in
# bfloat16 (OpenVINO's default on CPUs with bf16) keep ``scales`` in float32 but round every
# other float tensor, so a ``Concat`` building ``[1, 1, scale_h, scale_w]`` turned x2.3 into
# x2.296875 (50 px -> 114 instead of 115). With ``axes`` (opset 18+) a ``[scale_h, scale_w]``
# factor goes in as it is; before opset 18 only a 4-element factor does.


def resize_attributes(mode: str, align_corners: bool) -> Dict[str, object]:
    """ONNX ``Resize`` attributes that reproduce ``F.interpolate(mode, align_corners)``."""
    if mode == 'nearest':
        if align_corners:
            raise ValueError('align_corners=True is not defined for nearest resizing')
        return {'mode': 'nearest', 'coordinate_transformation_mode': 'asymmetric',
                'nearest_mode': 'floor'}
    if mode not in MODES:
        raise ValueError(f'unsupported resize mode {mode!r} (choose from {", ".join(MODES)})')
    attrs: Dict[str, object] = {
        'mode': 'linear' if mode == 'bilinear' else 'cubic',
        'coordinate_transformation_mode': 'align_corners' if align_corners
                                          else 'pytorch_half_pixel',
    }
    if mode == 'bicubic':
        attrs['cubic_coeff_a'] = -0.75  # PyTorch's bicubic kernel
    return attrs


def _spatial_scales(scales: Tensor) -> Tuple[float, float]:
    if scales.dim() != 1 or scales.numel() not in (2, 4):
        raise ValueError('scales must be a 1-D tensor [scale_h, scale_w] or '
                         f'[1, 1, scale_h, scale_w], got shape {tuple(scales.shape)}')
    values = scales.detach().to(torch.float32).tolist()
    if scales.numel() == 4 and values[:2] != [1.0, 1.0]:
        raise ValueError(f'scales [n, c, h, w] must not scale batch or channels, got {values}')
    scale_h, scale_w = values[-2:]
    if not all(v > 0 and v != float('inf') for v in (scale_h, scale_w)):
        raise ValueError(f'scales must be finite and > 0, got {values[-2:]}')
    return scale_h, scale_w


def _upsample(x: Tensor, size: List[int], mode: str, align_corners: bool,
              scale_h: float, scale_w: float) -> Tensor:
    resize_attributes(mode, align_corners)  # validates mode and align_corners
    if x.dim() != 4:
        raise ValueError(f'dynamic resize expects an NCHW tensor, got shape {tuple(x.shape)}')
    return interpolation.resize(x, tuple(size), (scale_h, scale_w), mode, align_corners)


@torch.library.custom_op(f'{_OP_NAMESPACE}::dynamic_resize', mutates_args=())
def _dynamic_resize_op(x: Tensor, scales: Tensor, mode: str, align_corners: bool) -> Tensor:
    scale_h, scale_w = _spatial_scales(scales)
    size = [resized_length(x.shape[2], scale_h), resized_length(x.shape[3], scale_w)]
    if min(size) < 1:
        raise ValueError(f'resizing {tuple(x.shape[2:])} by ({scale_h}, {scale_w}) gives an '
                         f'empty output {tuple(size)}')
    return _upsample(x, size, mode, align_corners, scale_h, scale_w)


@torch.library.custom_op(f'{_OP_NAMESPACE}::dynamic_resize_to_size', mutates_args=())
def _dynamic_resize_to_size_op(x: Tensor, sizes: Tensor, mode: str,
                               align_corners: bool) -> Tensor:
    if sizes.dim() != 1 or sizes.numel() != 2:
        raise ValueError(f'sizes must be a 1-D tensor [height, width], got shape '
                         f'{tuple(sizes.shape)}')
    out_h, out_w = (int(v) for v in sizes.tolist())
    if out_h < 1 or out_w < 1:
        raise ValueError(f'sizes must be >= 1, got {[out_h, out_w]}')
    # Given sizes, ONNX Runtime samples at scale = out / in, computed in float32.
    scale_h = float(np.float32(out_h) / np.float32(x.shape[2]))
    scale_w = float(np.float32(out_w) / np.float32(x.shape[3]))
    return _upsample(x, [out_h, out_w], mode, align_corners, scale_h, scale_w)


def fake_resize_output(x: Tensor, *_: object) -> Tensor:
    """Fake (meta) kernel of every resize op: N and C kept, H and W data-dependent sizes."""
    ctx = torch.library.get_ctx()
    return x.new_empty((x.shape[0], x.shape[1], ctx.new_dynamic_size(),
                        ctx.new_dynamic_size()))


_dynamic_resize_op.register_fake(fake_resize_output)
_dynamic_resize_to_size_op.register_fake(fake_resize_output)


def dynamic_resize(x: Tensor, scales: Tensor, mode: str = 'bicubic',
                   align_corners: bool = False) -> Tensor:
    """Resize NCHW ``x`` by ``scales`` = ``[scale_h, scale_w]`` or ``[1, 1, scale_h, scale_w]``.

    Exports to ``Resize(x, '', scales)`` with ``scales`` computed from the graph input.
    """
    return _dynamic_resize_op(x, scales, mode, bool(align_corners))


def dynamic_resize_to_size(x: Tensor, sizes: Tensor, mode: str = 'bicubic',
                           align_corners: bool = False) -> Tensor:
    """Resize NCHW ``x`` to ``sizes`` = ``[height, width]`` given as a Tensor.

    Exports to ``Resize(x, '', '', sizes)`` with ``sizes`` computed from the graph input.
    """
    return _dynamic_resize_to_size_op(x, sizes, mode, bool(align_corners))


# ---- TorchScript exporter -------------------------------------------------------------------

def _onnx_attrs(mode: str, align_corners: bool) -> Dict[str, object]:
    suffix = {str: '_s', float: '_f', int: '_i'}
    return {key + suffix[type(value)]: value
            for key, value in resize_attributes(mode, align_corners).items()}


@SYMBOLIC_REWRITER.register_symbolic(f'{_OP_NAMESPACE}::dynamic_resize',
                                     opset=TORCHSCRIPT_MIN_OPSET)
@symbolic_helper.parse_args('v', 'v', 's', 'b')
def _dynamic_resize_symbolic(g, x, scales, mode, align_corners):
    empty = g.op('Constant', value_t=torch.tensor([], dtype=torch.float32))
    attrs = _onnx_attrs(mode, align_corners)
    if scales.type().scalarType() != 'Float':
        scales = g.op('Cast', scales, to_i=1)  # FLOAT
    if symbolic_helper._get_tensor_sizes(scales) != [4]:
        if g.opset >= AXES_MIN_OPSET:  # the factor goes in unchanged (see AXES_MIN_OPSET)
            return g.op('Resize', x, empty, scales, axes_i=[2, 3], **attrs)
        ones = g.op('Constant', value_t=torch.ones(2, dtype=torch.float32))
        scales = g.op('Concat', ones, scales, axis_i=0)
    return g.op('Resize', x, empty, scales, **attrs)


@SYMBOLIC_REWRITER.register_symbolic(f'{_OP_NAMESPACE}::dynamic_resize_to_size',
                                     opset=TORCHSCRIPT_MIN_OPSET)
@symbolic_helper.parse_args('v', 'v', 's', 'b')
def _dynamic_resize_to_size_symbolic(g, x, sizes, mode, align_corners):
    empty = g.op('Constant', value_t=torch.tensor([], dtype=torch.float32))
    batch_channels = g.op('Slice', g.op('Shape', x),
                          g.op('Constant', value_t=torch.tensor([0])),
                          g.op('Constant', value_t=torch.tensor([2])))
    full_sizes = g.op('Concat', batch_channels, g.op('Cast', sizes, to_i=7), axis_i=0)  # INT64
    return g.op('Resize', x, empty, empty, full_sizes, **_onnx_attrs(mode, align_corners))


# ---- dynamo exporter ------------------------------------------------------------------------

@SYMBOLIC_REWRITER.register_symbolic(f'{_OP_NAMESPACE}::dynamic_resize', exporter='dynamo',
                                     opset=DYNAMO_MIN_OPSET)
def _translate_dynamic_resize(x, scales, mode: str, align_corners: bool):
    """The same single ``Resize`` as the TorchScript symbolic."""
    from onnxscript import opset18 as op  # imported on use: keeps importing this module cheap

    axes = {'axes': [2, 3]} if scales.shape[0] == 2 else {}  # scales go in unchanged
    return op.Resize(x, None, scales, **axes, **resize_attributes(mode, align_corners))


@SYMBOLIC_REWRITER.register_symbolic(f'{_OP_NAMESPACE}::dynamic_resize_to_size',
                                     exporter='dynamo', opset=DYNAMO_MIN_OPSET)
def _translate_dynamic_resize_to_size(x, sizes, mode: str, align_corners: bool):
    """``Resize`` with ``sizes`` from the graph, as the TorchScript symbolic."""
    from onnxscript import opset18 as op

    full_sizes = op.Concat(op.Shape(x, start=0, end=2), op.Cast(sizes, to=7), axis=0)
    return op.Resize(x, None, None, full_sizes, **resize_attributes(mode, align_corners))
