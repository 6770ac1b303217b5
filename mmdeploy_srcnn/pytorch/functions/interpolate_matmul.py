"""``F.interpolate`` for ONNX Runtime and OpenVINO: a Tensor factor becomes two matrix products.

Both engines run a dense ``MatMul`` faster than their cubic ``Resize`` kernel (ONNX Runtime
spends 40-53% of an SRCNN run in it; SRCNN at 256 -> 768 ran 1.6x (scale-aware model) to 2.0x
(scale-blind) faster on ONNX Runtime and 1.1x on OpenVINO, benchmarks/README.md), so for these
backends a Tensor ``scale_factor`` goes to
:func:`~mmdeploy_srcnn.ops.matmul_resize` (same result as ``Resize`` within 1e-5).

Everything else is :func:`interpolate__default`'s job and is handed to it unchanged: a Tensor
``size``, numbers, invalid calls (it raises the errors), and every call when the deploy config
says ``onnx_config.matmul_resize=False``. It is called directly, not through
``get_context().origin_func``: inside a backend rewrite that is ``torch``'s own
``F.interpolate`` (the backend record replaces the default one), which cannot take a Tensor
factor. The default rewrite's own fallback then reaches ``origin_func`` through the same call
context.
"""
from typing import Any, Optional

import torch
from torch import Tensor

from mmdeploy_srcnn.core import FUNCTION_REWRITER
from mmdeploy_srcnn.ops.dynamic_resize import MODES
from mmdeploy_srcnn.ops.matmul_resize import matmul_resize

from .interpolate import _as_pair, interpolate__default

MATMUL_BACKENDS = ('onnxruntime', 'openvino')


def matmul_resize_enabled(cfg: Any) -> bool:
    """The ``onnx_config.matmul_resize`` switch; on when the config does not say (or no cfg)."""
    if cfg is None:
        return True
    return bool(cfg.get('onnx_config', {}).get('matmul_resize', True))


def interpolate__matmul(input: Tensor, size: Any = None, scale_factor: Any = None,
                        mode: str = 'nearest', align_corners: Optional[bool] = None,
                        recompute_scale_factor: Optional[bool] = None,
                        antialias: bool = False) -> Tensor:
    """A valid Tensor ``scale_factor`` -> :func:`matmul_resize`; anything else -> the default."""
    handled = (isinstance(scale_factor, Tensor) and size is None and not antialias
               and mode in MODES and isinstance(input, Tensor) and input.dim() == 4
               and matmul_resize_enabled(FUNCTION_REWRITER.get_context().cfg))
    if not handled:
        return interpolate__default(input, size=size, scale_factor=scale_factor, mode=mode,
                                    align_corners=align_corners,
                                    recompute_scale_factor=recompute_scale_factor,
                                    antialias=antialias)
    scales = _as_pair(scale_factor, 'scale_factor', torch.float32, (2, 4))
    return matmul_resize(input, scales, mode, bool(align_corners))


for _backend in MATMUL_BACKENDS:
    FUNCTION_REWRITER.register_rewriter('torch.nn.functional.interpolate',
                                        backend=_backend)(interpolate__matmul)
