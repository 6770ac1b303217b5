"""Which backend gets which ``F.interpolate`` rewrite, and the ``matmul_resize`` switch."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmdeploy_srcnn.apis.config import ConfigError, load_deploy_config
from mmdeploy_srcnn.core import FUNCTION_REWRITER, RewriterContext
from mmdeploy_srcnn.ops import dynamic_resize
from mmdeploy_srcnn.pytorch.functions import interpolate as default_module
from mmdeploy_srcnn.pytorch.functions import interpolate__default, interpolate__matmul
from mmdeploy_srcnn.pytorch.functions import interpolate_matmul as matmul_module

TARGET = 'torch.nn.functional.interpolate'


@pytest.fixture
def calls(monkeypatch):
    """Record which resize op each rewrite calls (the real ops still run)."""
    seen = []

    def spy(name, op):
        def record(*args, **kwargs):
            seen.append(name)
            return op(*args, **kwargs)
        return record

    monkeypatch.setattr(matmul_module, 'matmul_resize',
                        spy('matmul', matmul_module.matmul_resize))
    monkeypatch.setattr(default_module, 'dynamic_resize',
                        spy('resize', default_module.dynamic_resize))
    monkeypatch.setattr(default_module, 'dynamic_resize_to_size',
                        spy('resize_to_size', default_module.dynamic_resize_to_size))
    return seen


def _cfg(matmul_resize):
    return Config(dict(onnx_config=dict(matmul_resize=matmul_resize)))


@pytest.mark.parametrize('backend, rewriter', [
    ('onnxruntime', interpolate__matmul), ('openvino', interpolate__matmul),
    ('reference', interpolate__default), ('default', interpolate__default)])
def test_each_backend_selects_its_rewrite(backend, rewriter):
    (record,) = [r for r in FUNCTION_REWRITER.select(backend, 'onnx') if r.func_name == TARGET]
    assert record.rewriter is rewriter


@pytest.mark.parametrize('backend, expected', [
    ('onnxruntime', ['matmul']), ('openvino', ['matmul']), ('reference', ['resize']),
    ('default', ['resize'])])
def test_tensor_factor_goes_to_the_backends_op(calls, backend, expected):
    x, factor = torch.rand(1, 3, 5, 7), torch.tensor([2.5, 3.0])
    with RewriterContext(_cfg(True), backend=backend):
        out = F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False)
    assert calls == expected
    torch.testing.assert_close(out, dynamic_resize(x, factor), atol=0, rtol=0)


@pytest.mark.parametrize('cfg', [_cfg(True), None, Config(dict(onnx_config=dict()))])
def test_switch_is_on_unless_the_config_says_false(calls, cfg):
    with RewriterContext(cfg, backend='onnxruntime'):
        F.interpolate(torch.rand(1, 3, 4, 4), scale_factor=torch.tensor(2.0), mode='bilinear')
    assert calls == ['matmul']


def test_switch_off_defers_to_the_plain_resize(calls):
    with RewriterContext(_cfg(False), backend='onnxruntime'):
        F.interpolate(torch.rand(1, 3, 4, 4), scale_factor=torch.tensor(2.0), mode='bicubic')
    assert calls == ['resize']


def test_tensor_size_and_numbers_take_the_default_path(calls):
    x = torch.rand(1, 3, 4, 6)
    with RewriterContext(_cfg(True), backend='openvino'):
        sized = F.interpolate(x, size=torch.tensor([9, 5]), mode='bicubic')
        numeric = F.interpolate(x, scale_factor=2, mode='nearest')
    assert calls == ['resize_to_size']  # numbers reach torch's own F.interpolate
    assert sized.shape == (1, 3, 9, 5)
    torch.testing.assert_close(numeric, F.interpolate(x, scale_factor=2, mode='nearest'))


@pytest.mark.parametrize('kwargs, message', [
    (dict(mode='area'), 'supports modes nearest, bilinear, bicubic'),
    (dict(mode='bilinear', antialias=True), 'antialias=True is not supported'),
    (dict(mode='bicubic', size=torch.tensor([4, 4])), 'either size or scale_factor'),
])
def test_invalid_calls_get_the_default_rewrites_errors(calls, kwargs, message):
    with RewriterContext(_cfg(True), backend='onnxruntime'), \
            pytest.raises(ValueError, match=message):
        F.interpolate(torch.rand(1, 3, 4, 4), scale_factor=torch.tensor(2.0), **kwargs)
    assert calls == []


def test_nearest_with_align_corners_is_refused():
    with RewriterContext(_cfg(True), backend='onnxruntime'), \
            pytest.raises(ValueError, match='align_corners=True is not defined for nearest'):
        F.interpolate(torch.rand(1, 3, 4, 4), scale_factor=torch.tensor(2.0), mode='nearest',
                      align_corners=True)


def test_config_switch_must_be_a_bool():
    with pytest.raises(ConfigError, match='onnx_config.matmul_resize: must be bool'):
        load_deploy_config('configs/srcnn_dynamic.py', {'onnx_config.matmul_resize': 'yes'})
    assert load_deploy_config('configs/srcnn_dynamic.py').onnx_config.matmul_resize is True


def test_reduced_openvino_precisions_are_accepted_with_the_matmul_resize():
    # The graph keeps sizes and sample positions exact in bf16 (tests/test_ops/test_precision).
    cfg = load_deploy_config('configs/srcnn_dynamic_openvino.py',
                             {'backend_config.precision': 'bf16'})
    assert cfg.onnx_config.matmul_resize and cfg.backend_config.precision == 'bf16'
