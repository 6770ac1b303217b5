"""The one place that registers the shipped rewrites and opens the context pipelines run in.

Importing :mod:`mmdeploy_srcnn.pytorch` registers the package's function rewriters
(``F.interpolate`` with a Tensor factor) and :mod:`mmdeploy_srcnn.ops` its ops' symbolic
rewrites; export, verification and profiling all call :func:`deploy_context`, so the model
sees the same rewrites in each of them.
"""
from typing import Optional

from mmengine.config import Config

import mmdeploy_srcnn.ops  # noqa: F401  (registers the project's ops' ONNX translations)
import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.core import RewriterContext


def deploy_context(deploy_cfg: Config, opset: Optional[int] = None) -> RewriterContext:
    """A context with the rewrites selected for the config's backend, for ONNX; ``opset``:
    the opset an export writes (rewriters see it as ``ctx.opset``)."""
    extra = {} if opset is None else {'opset': opset}
    return RewriterContext(deploy_cfg, backend=deploy_cfg.backend_config.type, ir='onnx',
                           **extra)
