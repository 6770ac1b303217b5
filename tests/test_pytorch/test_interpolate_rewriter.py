"""The shipped ``F.interpolate`` rewrite: Tensor factors and sizes become dynamic Resize inputs."""
import pytest
import torch
import torch.nn.functional as F

from mmdeploy_srcnn.core import FUNCTION_REWRITER, RewriterContext
from mmdeploy_srcnn.ops import dynamic_resize
from mmdeploy_srcnn.pytorch.functions import interpolate__default


def test_rewriter_is_registered_for_default_backend():
    records = [r for r in FUNCTION_REWRITER.records()
               if r.func_name == 'torch.nn.functional.interpolate' and r.backend == 'default']
    assert [(r.backend, r.ir, r.rewriter) for r in records] == [
        ('default', 'default', interpolate__default)]


def test_tensor_factor_goes_to_the_dynamic_op():
    x = torch.rand(1, 3, 7, 9)
    factor = torch.tensor([2.5, 3.0])
    with RewriterContext():
        actual = F.interpolate(x, scale_factor=factor, mode='bicubic', align_corners=False)
    torch.testing.assert_close(actual, dynamic_resize(x, factor), atol=0, rtol=0)
    assert actual.shape == (1, 3, 17, 27)


@pytest.mark.parametrize('factor', [torch.tensor(3.0), torch.tensor([3.0])])
def test_single_value_tensor_means_both_axes(factor):
    with RewriterContext():
        out = F.interpolate(torch.rand(1, 3, 5, 6), scale_factor=factor, mode='bilinear')
    assert out.shape == (1, 3, 15, 18)


def test_tensor_size_resizes_to_that_size():
    with RewriterContext():
        out = F.interpolate(torch.rand(2, 3, 5, 6), size=torch.tensor([11, 4]), mode='bicubic')
    assert out.shape == (2, 3, 11, 4)


def test_other_calls_go_to_the_original_unchanged():
    x = torch.rand(1, 3, 6, 6)
    expected = F.interpolate(x, scale_factor=2.5, mode='bicubic', align_corners=False)
    with RewriterContext():
        actual = F.interpolate(x, scale_factor=2.5, mode='bicubic', align_corners=False)
        resized = F.interpolate(x, size=(4, 5), mode='area')
    torch.testing.assert_close(actual, expected, atol=0, rtol=0)
    assert resized.shape == (1, 3, 4, 5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(scale_factor=torch.tensor([2.0, 2.0]), mode='area'), "supports modes .* got 'area'"),
    (dict(scale_factor=torch.tensor([2.0, 2.0]), mode='bilinear', antialias=True),
     'antialias=True is not supported'),
    (dict(scale_factor=torch.tensor([2.0, 2.0, 2.0])), r'must hold 1 or 2 or 4 values'),
    (dict(size=torch.tensor([4, 4, 4, 4])), r'size must hold 1 or 2 values'),
    (dict(size=torch.tensor([4, 4]), scale_factor=2.0), 'either size or scale_factor'),
])
def test_unsupported_tensor_calls_raise(kwargs, message):
    with RewriterContext(), pytest.raises(ValueError, match=message):
        F.interpolate(torch.rand(1, 3, 4, 4), **kwargs)


def test_tensor_factor_needs_nchw():
    with RewriterContext(), pytest.raises(ValueError, match='needs NCHW input, got 3-D'):
        F.interpolate(torch.rand(1, 3, 4), scale_factor=torch.tensor([2.0, 2.0]),
                      mode='bicubic')
