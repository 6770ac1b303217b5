"""The one place that registers the shipped rewrites and opens the context pipelines run in.

Importing :mod:`mmdeploy_srcnn.pytorch` registers the package's rewriters (``F.interpolate``
with a Tensor factor); export, verification and profiling all call :func:`deploy_context`,
so the model sees the same rewrites in each of them.
"""
from mmengine.config import Config

import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.core import RewriterContext


def deploy_context(deploy_cfg: Config) -> RewriterContext:
    """A context with the rewrites selected for the config's backend, for ONNX."""
    return RewriterContext(deploy_cfg, backend=deploy_cfg.backend_config.type, ir='onnx')
