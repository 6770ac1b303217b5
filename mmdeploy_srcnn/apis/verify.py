"""Compare a backend's outputs with PyTorch's over a matrix of batch sizes, input sizes and scales.

The PyTorch reference runs inside a :class:`~mmdeploy_srcnn.core.RewriterContext` with the
factor as a Tensor, i.e. through the same dynamic-resize operator whose eager path follows
ONNX's float32 output-size rule. Differences are therefore the backend's own, not a rounding
rule of PyTorch's.
"""
import dataclasses
import itertools
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

import mmdeploy_srcnn.pytorch  # noqa: F401  (registers the shipped rewriters)
from mmdeploy_srcnn.apis.export import make_factor
from mmdeploy_srcnn.backends import BaseBackend
from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.utils.scale import parse_scale
from mmdeploy_srcnn.utils.sizes import resized_length


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


@dataclasses.dataclass
class BackendComparison:
    """Pairwise agreement of PyTorch and several backends over the verification matrix.

    ``max_diff[(a, b)]`` is the largest absolute difference over the cases both engines ran;
    ``shape_mismatches[(a, b)]`` counts cases whose output sizes differ for no known reason;
    ``size_rule_cases[(a, b)]`` counts cases whose sizes differ only because one engine computes
    ``floor(in * scale)`` in float32 and the other in float64 (the ONNX spec leaves this open;
    ONNX Runtime and OpenVINO use float32, ``onnx.reference`` float64): they are reported, not
    failed, and cannot be compared pixel by pixel (the convolutions see another image border).
    ``compared[(a, b)]`` counts the cases both ran (the reference backend skips large ones).
    """

    engines: List[str]
    max_diff: Dict[Tuple[str, str], float]
    shape_mismatches: Dict[Tuple[str, str], int]
    size_rule_cases: Dict[Tuple[str, str], int]
    compared: Dict[Tuple[str, str], int]
    atol: float
    cross_backend_atol: float

    def tolerance(self, first: str, second: str) -> float:
        return self.atol if 'pytorch' in (first, second) else self.cross_backend_atol

    def pair_passed(self, first: str, second: str) -> bool:
        key = (first, second)
        return (self.compared[key] > self.size_rule_cases[key]
                and self.shape_mismatches[key] == 0
                and self.max_diff[key] <= self.tolerance(first, second))

    @property
    def passed(self) -> bool:
        return all(self.pair_passed(a, b) for a, b in self.max_diff)

    def as_dict(self) -> Dict[str, Any]:
        return {'engines': self.engines, 'atol': self.atol,
                'cross_backend_atol': self.cross_backend_atol, 'passed': self.passed,
                'pairs': [{'engines': [a, b], 'max_abs_diff': self.max_diff[(a, b)],
                           'shape_mismatches': self.shape_mismatches[(a, b)],
                           'size_rule_cases': self.size_rule_cases[(a, b)],
                           'cases': self.compared[(a, b)], 'passed': self.pair_passed(a, b)}
                          for a, b in self.max_diff]}


def compare_backends(model: nn.Module, backends: Dict[str, BaseBackend], deploy_cfg: Config,
                     seed: int = 0) -> BackendComparison:
    """Run PyTorch and every backend on the same inputs of the verification matrix."""
    verify_cfg = deploy_cfg.verify
    onnx_cfg = deploy_cfg.onnx_config
    engines = ['pytorch', *backends]
    pairs = [(a, b) for i, a in enumerate(engines) for b in engines[i + 1:]]
    max_diff = {pair: 0.0 for pair in pairs}
    mismatches = {pair: 0 for pair in pairs}
    size_rule = {pair: 0 for pair in pairs}
    compared = {pair: 0 for pair in pairs}
    rng = np.random.default_rng(seed)
    for batch, (height, width), raw_scale in itertools.product(
            verify_cfg.batch_sizes, verify_cfg.sizes, verify_cfg.scales):
        scale = parse_scale(raw_scale)
        image = rng.random((batch, 3, height, width), dtype=np.float32)
        inputs = {onnx_cfg.input_names[0]: image,
                  onnx_cfg.input_names[1]: make_factor(scale, onnx_cfg.factor_format).numpy()}
        outputs = {'pytorch': run_torch(model, torch.from_numpy(image), scale, deploy_cfg)}
        for name, backend in backends.items():
            if backend.accepts(inputs):
                outputs[name] = backend.run(inputs)[onnx_cfg.output_names[0]]
        for first, second in pairs:
            if first not in outputs or second not in outputs:
                continue
            pair = (first, second)
            compared[pair] += 1
            out_a, out_b = outputs[first], outputs[second]
            if out_a.shape != out_b.shape:
                if not _size_rule_difference((height, width), scale, out_a.shape, out_b.shape):
                    mismatches[pair] += 1
                    continue
                size_rule[pair] += 1
                continue
            max_diff[pair] = max(max_diff[pair], float(np.abs(out_a - out_b).max()))
    return BackendComparison(engines, max_diff, mismatches, size_rule, compared,
                             atol=float(verify_cfg.atol),
                             cross_backend_atol=float(verify_cfg.get('cross_backend_atol', 1e-5)))


def _size_rule_difference(in_size: Tuple[int, int], scale: Tuple[float, float],
                          shape_a: Tuple[int, ...], shape_b: Tuple[int, ...]) -> bool:
    """Whether two output shapes differ only by the float32 vs float64 ``floor`` rule."""
    if shape_a[:2] != shape_b[:2]:
        return False
    for length, factor, size_a, size_b in zip(in_size, scale, shape_a[2:], shape_b[2:]):
        rules = {resized_length(length, factor),
                 math.floor(length * float(np.float32(factor)))}
        if not {size_a, size_b} <= rules:
            return False
    return True


def format_comparison(comparison: BackendComparison) -> str:
    """A matrix of max abs differences (upper triangle), like Polygraphy's comparison output."""
    engines = comparison.engines
    width = max(12, *(len(e) + 2 for e in engines))
    lines = [' ' * width + ''.join(f'{e:>{width}}' for e in engines[1:])]
    for row, first in enumerate(engines[:-1]):
        cells = []
        for column, second in enumerate(engines[1:], start=1):
            if column <= row:
                cells.append(f'{"":>{width}}')
                continue
            key = (first, second)
            if comparison.compared[key] == 0:
                text = 'n/a'
            elif comparison.shape_mismatches[key]:
                text = f'{comparison.shape_mismatches[key]} shape!'
            else:
                text = f'{comparison.max_diff[key]:.1e}'
                text += '*' if comparison.size_rule_cases[key] else ''
                text += '' if comparison.pair_passed(first, second) else ' FAIL'
            cells.append(f'{text:>{width}}')
        lines.append(f'{first:<{width}}' + ''.join(cells))
    lines.append(f'tolerances: vs pytorch {comparison.atol:g}, between backends '
                 f'{comparison.cross_backend_atol:g}; cases per pair: '
                 + ', '.join(f'{a}/{b} {n}' for (a, b), n in comparison.compared.items()))
    ambiguous = {pair: n for pair, n in comparison.size_rule_cases.items() if n}
    if ambiguous:
        lines.append('* output size differs by one pixel in '
                     + ', '.join(f'{a}/{b}: {n} case(s)' for (a, b), n in ambiguous.items())
                     + ': floor(in * scale) in float32 vs float64, which the ONNX spec leaves '
                       'open (not compared: the convolutions see another border)')
    return '\n'.join(lines)
