"""Compare a backend's outputs with PyTorch's over a matrix of batch sizes, input sizes and scales.

The PyTorch reference runs inside a :class:`~mmdeploy_srcnn.core.RewriterContext` with the
factor as a Tensor, i.e. through the same dynamic-resize operator whose eager path follows
ONNX's float32 output-size rule. Differences are therefore the backend's own, not a rounding
rule of PyTorch's.
"""
import dataclasses
import itertools
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.apis.export import make_factor
from mmdeploy_srcnn.backends import BaseBackend
from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.utils.config import parse_scale


@dataclasses.dataclass
class VerificationRow:
    """One cell of the verification matrix."""

    batch: int
    in_size: Tuple[int, int]
    scale: Tuple[float, float]
    torch_shape: Tuple[int, ...]
    backend_shape: Tuple[int, ...]
    max_abs_diff: Optional[float]  # None when the shapes differ
    atol: float

    @property
    def passed(self) -> bool:
        return (self.torch_shape == self.backend_shape and self.max_abs_diff is not None
                and self.max_abs_diff <= self.atol)

    def as_dict(self) -> Dict[str, Any]:
        return {**dataclasses.asdict(self), 'passed': self.passed}


def run_torch(model: nn.Module, image: torch.Tensor, scale: Tuple[float, float],
              deploy_cfg: Config) -> np.ndarray:
    """The PyTorch reference: ``model(image, factor_tensor)`` with the rewrites applied."""
    factor = make_factor(scale, deploy_cfg.onnx_config.factor_format)
    with RewriterContext(deploy_cfg, backend=deploy_cfg.backend_config.type), torch.no_grad():
        return model(image, factor).numpy()


def run_backend(backend: BaseBackend, image: np.ndarray, scale: Tuple[float, float],
                deploy_cfg: Config) -> np.ndarray:
    """Run the exported model on ``backend`` with the config's input names."""
    onnx_cfg = deploy_cfg.onnx_config
    factor = make_factor(scale, onnx_cfg.factor_format).numpy()
    outputs = backend.run({onnx_cfg.input_names[0]: image, onnx_cfg.input_names[1]: factor})
    return outputs[onnx_cfg.output_names[0]]


def verify_backend(model: nn.Module, backend: BaseBackend, deploy_cfg: Config,
                   seed: int = 0) -> List[VerificationRow]:
    """Run ``verify.scales x verify.sizes x verify.batch_sizes`` on PyTorch and ``backend``.

    Inputs are uniform random images in [0, 1] (seeded): noise has every frequency, so it
    exercises the resize kernels harder than a smooth photo does.
    """
    verify_cfg = deploy_cfg.verify
    rng = np.random.default_rng(seed)
    rows = []
    for batch, (height, width), raw_scale in itertools.product(
            verify_cfg.batch_sizes, verify_cfg.sizes, verify_cfg.scales):
        scale = parse_scale(raw_scale)
        image = rng.random((batch, 3, height, width), dtype=np.float32)
        expected = run_torch(model, torch.from_numpy(image), scale, deploy_cfg)
        actual = run_backend(backend, image, scale, deploy_cfg)
        diff = (float(np.abs(expected - actual).max())
                if expected.shape == actual.shape else None)
        rows.append(VerificationRow(batch=batch, in_size=(height, width), scale=scale,
                                    torch_shape=tuple(expected.shape),
                                    backend_shape=tuple(actual.shape), max_abs_diff=diff,
                                    atol=float(verify_cfg.atol)))
    return rows
