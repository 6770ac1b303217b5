"""Run PyTorch and backends on the same inputs over the config's verification matrix.

One case generator (:func:`verification_cases`: batch sizes x input sizes x scales, seeded
uniform noise in [0, 1], which exercises the resize kernels harder than a smooth photo), one
run (:func:`run_cases`: PyTorch and every backend per case, inside one rewriter context) and two
readings of it: :func:`verification_rows` (PyTorch against one backend) and
:class:`BackendComparison` (every pair of engines). Inputs are built and outputs read by the
exported file's :class:`~mmdeploy_srcnn.utils.model_meta.ModelConvention`, and compared as RGB
in [0, 1].

The PyTorch reference runs with the factor as a Tensor, through the same dynamic-resize
operator whose eager path follows ONNX's float32 output-size rule: differences are the
backend's own, not a rounding rule of PyTorch's.
"""
import dataclasses
import itertools
import math
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from mmdeploy_srcnn.apis.config import DEFAULT_CROSS_BACKEND_ATOL
from mmdeploy_srcnn.apis.rewrites import deploy_context
from mmdeploy_srcnn.backends import BaseBackend
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.scale import parse_scale
from mmdeploy_srcnn.utils.sizes import resized_length

PYTORCH = 'pytorch'


@dataclasses.dataclass(frozen=True)
class Case:
    """One cell of the verification matrix: an RGB batch in [0, 1] and a scale."""

    batch: int
    in_size: Tuple[int, int]
    scale: Tuple[float, float]
    image: np.ndarray


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """Every engine's output for one case (RGB in [0, 1]); engines that refused it are absent."""

    case: Case
    outputs: Dict[str, np.ndarray]


def verification_cases(verify_cfg: Mapping[str, Any], seed: int = 0) -> Iterator[Case]:
    """``batch_sizes x sizes x scales`` of the config, in that order, with seeded images."""
    rng = np.random.default_rng(seed)
    for batch, (height, width), raw_scale in itertools.product(
            verify_cfg['batch_sizes'], verify_cfg['sizes'], verify_cfg['scales']):
        yield Case(batch=batch, in_size=(height, width), scale=parse_scale(raw_scale),
                   image=rng.random((batch, 3, height, width), dtype=np.float32))


def run_cases(model: nn.Module, backends: Mapping[str, BaseBackend], deploy_cfg: Config,
              convention: ModelConvention, seed: int = 0) -> List[CaseResult]:
    """Run PyTorch and each backend on every verification case, with one rewriter context."""
    results = []
    model.eval()
    with deploy_context(deploy_cfg), torch.no_grad():
        for case in verification_cases(deploy_cfg.verify, seed):
            inputs = convention.model_inputs(case.image, case.scale)
            expected = model(torch.from_numpy(inputs[convention.image_input]),
                             torch.from_numpy(inputs[convention.factor_input]))
            outputs = {PYTORCH: convention.rgb_output({convention.output: expected.numpy()})}
            for name, backend in backends.items():
                if backend.accepts(inputs):
                    outputs[name] = convention.rgb_output(backend.run(inputs))
            results.append(CaseResult(case, outputs))
    return results


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How close a backend's output must be to PyTorch's fp32 output (RGB in [0, 1]).

    ``atol``: the largest absolute difference; ``min_psnr``: the smallest PSNR (dB) of the
    backend's output against PyTorch's, for reduced precisions, whose errors are spread over
    every pixel (None: not checked).
    """

    atol: float
    min_psnr: Optional[float] = None


@dataclasses.dataclass
class VerificationRow:
    """PyTorch (fp32) against one backend at one precision on one case."""

    batch: int
    in_size: Tuple[int, int]
    scale: Tuple[float, float]
    precision: str
    torch_shape: Tuple[int, ...]
    backend_shape: Tuple[int, ...]
    max_abs_diff: Optional[float]  # None when the shapes differ
    psnr: Optional[float]  # dB against PyTorch; inf when equal, None when the shapes differ
    tolerance: Tolerance

    @property
    def passed(self) -> bool:
        if self.torch_shape != self.backend_shape or self.max_abs_diff is None:
            return False
        psnr_ok = self.tolerance.min_psnr is None or self.psnr >= self.tolerance.min_psnr
        return self.max_abs_diff <= self.tolerance.atol and psnr_ok

    def as_dict(self) -> Dict[str, Any]:
        return {**dataclasses.asdict(self), 'passed': self.passed}


def _max_diff(first: np.ndarray, second: np.ndarray) -> Optional[float]:
    """Largest absolute difference, or None when the shapes differ; NaN counts as infinite."""
    if first.shape != second.shape:
        return None
    diff = np.abs(first.astype(np.float64) - second.astype(np.float64))
    return float('inf') if not np.isfinite(diff).all() else float(diff.max())


def _psnr(first: np.ndarray, second: np.ndarray) -> Optional[float]:
    """PSNR (dB) of ``second`` against ``first`` on the [0, 1] scale; None for other shapes."""
    if first.shape != second.shape:
        return None
    mse = float(np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2))
    if not np.isfinite(mse):
        return float('-inf')
    return float('inf') if mse == 0 else 10 * float(np.log10(1.0 / mse))


def verification_rows(results: List[CaseResult], backend: str, tolerance: Tolerance,
                      precision: str = 'f32') -> List[VerificationRow]:
    """PyTorch against ``backend`` for every case (the backend must have run them all)."""
    rows = []
    for result in results:
        expected, actual = result.outputs[PYTORCH], result.outputs[backend]
        case = result.case
        rows.append(VerificationRow(batch=case.batch, in_size=case.in_size, scale=case.scale,
                                    precision=precision, torch_shape=tuple(expected.shape),
                                    backend_shape=tuple(actual.shape),
                                    max_abs_diff=_max_diff(expected, actual),
                                    psnr=_psnr(expected, actual), tolerance=tolerance))
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

    @classmethod
    def from_results(cls, results: List[CaseResult], engines: List[str], atol: float,
                     cross_backend_atol: float = DEFAULT_CROSS_BACKEND_ATOL
                     ) -> 'BackendComparison':
        """Compare every pair of ``engines`` (PyTorch first) over ``results``."""
        pairs = [(a, b) for i, a in enumerate(engines) for b in engines[i + 1:]]
        comparison = cls(engines, *({pair: 0 for pair in pairs} for _ in range(4)),
                         atol=float(atol), cross_backend_atol=float(cross_backend_atol))
        for pair in pairs:
            comparison.max_diff[pair] = 0.0
        for result in results:
            for pair in pairs:
                comparison._add(result, pair)
        return comparison

    def _add(self, result: CaseResult, pair: Tuple[str, str]) -> None:
        first, second = pair
        if first not in result.outputs or second not in result.outputs:
            return
        self.compared[pair] += 1
        out_a, out_b = result.outputs[first], result.outputs[second]
        diff = _max_diff(out_a, out_b)
        if diff is not None:
            self.max_diff[pair] = max(self.max_diff[pair], diff)
        elif _size_rule_difference(result.case, out_a.shape, out_b.shape):
            self.size_rule_cases[pair] += 1
        else:
            self.shape_mismatches[pair] += 1

    def tolerance(self, first: str, second: str) -> float:
        return self.atol if PYTORCH in (first, second) else self.cross_backend_atol

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


def _size_rule_difference(case: Case, shape_a: Tuple[int, ...],
                          shape_b: Tuple[int, ...]) -> bool:
    """Whether two output shapes differ only by the float32 vs float64 ``floor`` rule."""
    if shape_a[:2] != shape_b[:2]:
        return False
    for length, factor, size_a, size_b in zip(case.in_size, case.scale, shape_a[2:],
                                              shape_b[2:]):
        rules = {resized_length(length, factor),
                 math.floor(length * float(np.float32(factor)))}
        if not {size_a, size_b} <= rules:
            return False
    return True
