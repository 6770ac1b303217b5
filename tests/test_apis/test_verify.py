"""Verification matrices: they pass what agrees and fail, by name, what does not."""
import math

import numpy as np
import pytest
import torch
from support.tools import load_tool

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.verify import (PYTORCH, BackendComparison, Tolerance, run_cases,
                                        verification_cases, verification_rows)
from mmdeploy_srcnn.backends import BaseBackend
from mmdeploy_srcnn.ops import dynamic_resize
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.scale import format_scale

format_comparison = load_tool('deploy').format_comparison
CONVENTION = ModelConvention()


class ResizeOnly(torch.nn.Module):
    def forward(self, x, factor):
        return dynamic_resize(x, factor)


class FakeBackend(BaseBackend):
    """Runs a numpy function in place of a model, to inject disagreements."""

    def __init__(self, path, function):
        super().__init__(path)
        self.function = function

    input_names = property(lambda self: ['input', 'factor'])
    output_names = property(lambda self: ['output'])

    def _run(self, inputs):
        return {'output': self.function(inputs['input'], inputs['factor'])}


def _torch_resize(image, factor):
    return dynamic_resize(torch.from_numpy(image), torch.from_numpy(factor)).numpy()


def _float64_size_resize(image, factor):
    """What an engine computing floor(in * scale) in float64 returns."""
    height = math.floor(image.shape[2] * float(factor[0]))
    width = math.floor(image.shape[3] * float(factor[1]))
    return torch.nn.functional.interpolate(torch.from_numpy(image), size=(height, width),
                                           mode='bicubic', align_corners=False).numpy()


@pytest.fixture
def cfg():
    return load_deploy_config('configs/srcnn_dynamic.py', {
        'verify.scales': [2, 2.3], 'verify.sizes': [(50, 30)], 'verify.batch_sizes': [1]})


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'')
    return path


def verify(cfg, backend):
    """Rows of PyTorch against one fake backend."""
    results = run_cases(ResizeOnly(), {'fake': backend}, cfg, CONVENTION)
    return verification_rows(results, 'fake', Tolerance(cfg.verify.atol))


def compare(cfg, backends):
    results = run_cases(ResizeOnly(), backends, cfg, CONVENTION)
    return BackendComparison.from_results(results, [PYTORCH, *backends], cfg.verify.atol,
                                          cfg.verify.cross_backend_atol)


def test_cases_follow_the_matrix_and_are_seeded(cfg):
    cases = list(verification_cases(cfg.verify))
    assert [(c.batch, c.in_size, c.scale) for c in cases] == [
        (1, (50, 30), (2.0, 2.0)), (1, (50, 30), (np.float32(2.3).item(),) * 2)]
    again = list(verification_cases(cfg.verify))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(cases, again))
    assert all(0 <= c.image.min() and c.image.max() <= 1 for c in cases)


def test_verify_passes_equal_and_fails_perturbed(cfg, model_file):
    good = verify(cfg, FakeBackend(model_file, _torch_resize))
    assert [row.passed for row in good] == [True, True]
    bad = verify(cfg, FakeBackend(model_file, lambda i, f: _torch_resize(i, f) + 2e-4))
    assert [row.passed for row in bad] == [False, False]
    assert all(row.max_abs_diff == pytest.approx(2e-4, rel=1e-3) for row in bad)


def test_nan_output_fails(cfg, model_file):
    rows = verify(cfg, FakeBackend(model_file, lambda i, f: _torch_resize(i, f) * np.nan))
    assert [row.passed for row in rows] == [False, False]
    assert all(row.max_abs_diff == float('inf') for row in rows)


def test_verify_reports_shape_mismatch(cfg, model_file):
    rows = verify(cfg, FakeBackend(model_file, _float64_size_resize))
    by_scale = {format_scale(row.scale): row for row in rows}
    assert by_scale['2'].passed
    mismatch = by_scale['2.3']
    assert not mismatch.passed and mismatch.max_abs_diff is None
    assert mismatch.torch_shape == (1, 3, 115, 69) and mismatch.backend_shape == (1, 3, 114, 68)


def test_comparison_tells_size_rule_from_real_mismatch(cfg, model_file):
    backends = {'float32': FakeBackend(model_file, _torch_resize),
                'float64': FakeBackend(model_file, _float64_size_resize),
                'cropped': FakeBackend(model_file, lambda i, f: _torch_resize(i, f)[..., :-2])}
    result = compare(cfg, backends)
    assert result.size_rule_cases[('pytorch', 'float64')] == 1
    assert result.pair_passed('pytorch', 'float64')  # x2 agrees, x2.3 is the spec ambiguity
    assert result.pair_passed('pytorch', 'float32')
    assert result.shape_mismatches[('pytorch', 'cropped')] == 2
    assert not result.pair_passed('pytorch', 'cropped') and not result.passed
    text = format_comparison(result)
    assert '2 shape!' in text and 'float32 vs float64' in text


def test_comparison_fails_values_beyond_cross_backend_tolerance(cfg, model_file):
    backends = {'a': FakeBackend(model_file, _torch_resize),
                'b': FakeBackend(model_file, lambda i, f: _torch_resize(i, f) + 5e-5)}
    result = compare(cfg, backends)
    assert result.pair_passed('pytorch', 'b')  # within 1e-4 of PyTorch
    assert not result.pair_passed('a', 'b')  # but not within 1e-5 of the other backend
    assert result.max_diff[('a', 'b')] == pytest.approx(5e-5, rel=1e-2)
    assert 'FAIL' in format_comparison(result)
    assert np.isclose(result.as_dict()['pairs'][-1]['max_abs_diff'], 5e-5, rtol=1e-2)


def test_reduced_precision_rows_check_psnr_too(cfg, model_file):
    def noisy(image, factor):  # half the pixels off by 0.01: about 43 dB
        clean = _torch_resize(image, factor)
        return clean + np.float32(0.01) * (np.random.default_rng(1).random(clean.shape) > 0.5)

    results = run_cases(ResizeOnly(), {'bf16': FakeBackend(model_file, noisy)}, cfg, CONVENTION)
    loose = verification_rows(results, 'bf16', Tolerance(atol=0.05, min_psnr=30), 'bf16')
    strict = verification_rows(results, 'bf16', Tolerance(atol=0.05, min_psnr=45), 'bf16')
    assert all(row.precision == 'bf16' and 42 < row.psnr < 44 for row in loose)
    assert [row.passed for row in loose] == [True, True]
    assert [row.passed for row in strict] == [False, False]
