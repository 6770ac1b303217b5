"""``F.interpolate`` with a Tensor factor or size: the rewrite that makes the factor dynamic.

Eager PyTorch only accepts numbers for ``scale_factor``; tracing would bake them into the graph.
Inside a :class:`~mmdeploy_srcnn.core.RewriterContext`, a Tensor ``scale_factor`` goes to
:func:`~mmdeploy_srcnn.ops.dynamic_resize` (ONNX ``Resize`` with ``scales`` from the graph) and a
Tensor ``size`` to :func:`~mmdeploy_srcnn.ops.dynamic_resize_to_size` (``Resize`` with
``sizes``). Every other call goes to the original function unchanged. The rewrite is a pure
function of its arguments, so re-entering it (the dynamo exporter re-dispatches through the
patched name) is harmless.
"""
import warnings
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from mmdeploy_srcnn.core import FUNCTION_REWRITER
from mmdeploy_srcnn.ops import dynamic_resize, dynamic_resize_to_size
from mmdeploy_srcnn.ops.dynamic_resize import MODES


def _as_pair(value: Tensor, what: str, dtype: torch.dtype, lengths: Tuple[int, ...]) -> Tensor:
    """``value`` as ``dtype`` with one of ``lengths``; 1 element means the same for h and w."""
    if value.dtype != dtype:
        value = value.to(dtype)
    with warnings.catch_warnings():
        # The tracer records sizes as tensors; the factor's shape is static, so reading it as
        # Python ints is exactly right here.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        shape = tuple(int(dim) for dim in value.shape)
    if shape in ((), (1,)):
        return value.reshape(1).expand(2)
    if len(shape) == 1 and shape[0] in lengths:
        return value
    allowed = ' or '.join(str(length) for length in (1, *lengths))
    raise ValueError(f'interpolate: a Tensor {what} must hold {allowed} values, '
                     f'got shape {shape}')


@FUNCTION_REWRITER.register_rewriter('torch.nn.functional.interpolate')
def interpolate__default(input: Tensor, size: Any = None, scale_factor: Any = None,
                         mode: str = 'nearest', align_corners: Optional[bool] = None,
                         recompute_scale_factor: Optional[bool] = None,
                         antialias: bool = False) -> Tensor:
    """Send Tensor factors and sizes to the dynamic Resize; everything else to the original."""
    dynamic_factor = isinstance(scale_factor, Tensor)
    dynamic_size = isinstance(size, Tensor)
    if not (dynamic_factor or dynamic_size):
        ctx = FUNCTION_REWRITER.get_context()
        return ctx.origin_func(input, size=size, scale_factor=scale_factor, mode=mode,
                               align_corners=align_corners,
                               recompute_scale_factor=recompute_scale_factor,
                               antialias=antialias)
    if size is not None and scale_factor is not None:
        raise ValueError('interpolate: give either size or scale_factor, not both')
    if mode not in MODES:
        raise ValueError(f'interpolate: a Tensor scale_factor/size supports modes '
                         f'{", ".join(MODES)}, got {mode!r}')
    if antialias:
        raise ValueError('interpolate: antialias=True is not supported with a Tensor '
                         'scale_factor/size')
    if input.dim() != 4:
        raise ValueError(f'interpolate: a Tensor scale_factor/size needs NCHW input, got '
                         f'{input.dim()}-D')
    if dynamic_factor:
        scales = _as_pair(scale_factor, 'scale_factor', torch.float32, (2, 4))
        return dynamic_resize(input, scales, mode, bool(align_corners))
    sizes = _as_pair(size, 'size', torch.int64, (2,))
    return dynamic_resize_to_size(input, sizes, mode, bool(align_corners))
