"""The dynamic resize operator: eager semantics, ONNX export and ONNX Runtime agreement."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from mmdeploy_srcnn.core import RewriterContext
from mmdeploy_srcnn.ops import dynamic_resize, dynamic_resize_to_size
from mmdeploy_srcnn.ops.dynamic_resize import resize_attributes
from mmdeploy_srcnn.utils.sizes import resized_length

pytestmark = pytest.mark.filterwarnings(
    'ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning',
    'ignore:The feature will be removed:DeprecationWarning')

MODE_CASES = [('nearest', False), ('bilinear', False), ('bilinear', True),
              ('bicubic', False), ('bicubic', True)]


class ResizeByFactor(torch.nn.Module):
    def __init__(self, mode, align_corners):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x, factor):
        return dynamic_resize(x, factor, self.mode, self.align_corners)


class ResizeToSize(torch.nn.Module):
    def __init__(self, mode, align_corners):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x, size):
        return dynamic_resize_to_size(x, size, self.mode, self.align_corners)


def _export(module, args, path, opset, second_input='factor'):
    with RewriterContext(opset=opset):  # the op's symbolic exists only inside a context
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                          input_names=['input', second_input], output_names=['output'],
                          dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                                        'output': {0: 'batch', 2: 'out_height',
                                                   3: 'out_width'}})
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model, ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('mode, align_corners', MODE_CASES)
@pytest.mark.parametrize('scale', [(2.0, 2.0), (2.5, 2.5), (3.0, 1.5), (0.5, 0.75)])
def test_eager_matches_interpolate_where_size_rules_agree(mode, align_corners, scale):
    x = torch.rand(2, 3, 12, 16)
    expected = F.interpolate(x, scale_factor=scale, mode=mode,
                             align_corners=None if mode == 'nearest' else align_corners)
    actual = dynamic_resize(x, torch.tensor(scale), mode, align_corners)
    assert actual.shape == expected.shape
    # Same formulas, different summation order (matrix product vs ATen's kernels).
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('length, scale, float64_size, float32_size', [
    (50, 2.3, 114, 115),  # float32 rounds up
    (30, 2.1, 63, 62),  # float32 rounds down
    (100, float(torch.tensor(3.3)), 329, 330),  # a scale read back from a float32 tensor
])
def test_eager_output_size_follows_the_float32_rule(length, scale, float64_size, float32_size):
    x = torch.rand(1, 1, length, 4)
    assert F.interpolate(x, scale_factor=(scale, 1.0), mode='bicubic').shape[2] == float64_size
    assert dynamic_resize(x, torch.tensor([scale, 1.0])).shape[2] == float32_size
    assert resized_length(length, scale) == float32_size


def test_factor_formats_hw_and_nchw_agree():
    x = torch.rand(1, 3, 9, 11)
    hw = dynamic_resize(x, torch.tensor([2.0, 3.0]))
    nchw = dynamic_resize(x, torch.tensor([1.0, 1.0, 2.0, 3.0]))
    assert hw.shape == (1, 3, 18, 33)
    torch.testing.assert_close(hw, nchw, atol=0, rtol=0)


@pytest.mark.parametrize('factor, message', [
    (torch.tensor([2.0]), r'scales must be a 1-D tensor'),
    (torch.tensor([[2.0, 2.0]]), r'scales must be a 1-D tensor'),
    (torch.tensor([2.0, 1.0, 2.0, 2.0]), r'must not scale batch or channels'),
    (torch.tensor([0.0, 2.0]), r'finite and > 0'),
    (torch.tensor([-1.0, 2.0]), r'finite and > 0'),
    (torch.tensor([float('inf'), 2.0]), r'finite and > 0'),
    (torch.tensor([float('nan'), 2.0]), r'finite and > 0'),
    (torch.tensor([0.01, 2.0]), r'empty output'),
])
def test_bad_factors_are_rejected(factor, message):
    with pytest.raises(ValueError, match=message):
        dynamic_resize(torch.rand(1, 3, 8, 8), factor)


def test_bad_mode_and_align_corners_are_rejected():
    with pytest.raises(ValueError, match="unsupported resize mode 'area'"):
        dynamic_resize(torch.rand(1, 3, 8, 8), torch.tensor([2.0, 2.0]), 'area')
    with pytest.raises(ValueError, match='align_corners=True is not defined for nearest'):
        dynamic_resize(torch.rand(1, 3, 8, 8), torch.tensor([2.0, 2.0]), 'nearest', True)


def test_resize_attributes_match_pytorch_conventions():
    assert resize_attributes('bicubic', False) == {
        'mode': 'cubic', 'coordinate_transformation_mode': 'pytorch_half_pixel',
        'cubic_coeff_a': -0.75}
    assert resize_attributes('bilinear', True) == {
        'mode': 'linear', 'coordinate_transformation_mode': 'align_corners'}
    assert resize_attributes('nearest', False) == {
        'mode': 'nearest', 'coordinate_transformation_mode': 'asymmetric',
        'nearest_mode': 'floor'}


@pytest.mark.parametrize('opset', [11, 13, 17, 20])
@pytest.mark.parametrize('mode, align_corners', MODE_CASES)
def test_torchscript_export_has_dynamic_scales(tmp_path, opset, mode, align_corners):
    model, session = _export(ResizeByFactor(mode, align_corners),
                             (torch.rand(1, 3, 8, 10), torch.tensor([2.0, 3.0])),
                             tmp_path / 'resize.onnx', opset)
    resize = [node for node in model.graph.node if node.op_type == 'Resize']
    assert len(resize) == 1
    assert model.opset_import[0].version == opset
    for shape, scale in [((1, 3, 8, 10), (2.0, 3.0)), ((2, 3, 13, 7), (2.5, 1.5)),
                         ((1, 3, 10, 10), (2.3, 2.3))]:
        x = torch.rand(*shape)
        factor = torch.tensor(scale)
        expected = dynamic_resize(x, factor, mode, align_corners).numpy()
        (actual,) = session.run(None, {'input': x.numpy(), 'factor': factor.numpy()})
        assert actual.shape == expected.shape
        assert abs(actual - expected).max() <= 1e-5


def test_torchscript_export_nchw_factor(tmp_path):
    _, session = _export(ResizeByFactor('bicubic', False),
                         (torch.rand(1, 3, 8, 8), torch.tensor([1.0, 1.0, 2.0, 2.0])),
                         tmp_path / 'nchw.onnx', 17)
    x = torch.rand(1, 3, 9, 6)
    factor = torch.tensor([1.0, 1.0, 3.0, 2.5])
    (actual,) = session.run(None, {'input': x.numpy(), 'factor': factor.numpy()})
    expected = dynamic_resize(x, factor).numpy()
    assert actual.shape == (1, 3, 27, 15)
    assert abs(actual - expected).max() <= 1e-5


@pytest.mark.parametrize('mode, align_corners', MODE_CASES)
def test_resize_to_tensor_size_exports_dynamic_sizes(tmp_path, mode, align_corners):
    model, session = _export(ResizeToSize(mode, align_corners),
                             (torch.rand(1, 3, 8, 10), torch.tensor([16, 20])),
                             tmp_path / 'sizes.onnx', 13, second_input='size')
    assert [n.op_type for n in model.graph.node].count('Resize') == 1
    for out_size in ([17, 31], [40, 12]):
        x = torch.rand(2, 3, 9, 11)
        size = torch.tensor(out_size)
        expected = dynamic_resize_to_size(x, size, mode, align_corners).numpy()
        (actual,) = session.run(None, {'input': x.numpy(), 'size': size.numpy()})
        assert actual.shape == (2, 3, *out_size) == expected.shape
        assert abs(actual - expected).max() <= 1e-5


@pytest.mark.parametrize('mode', ['nearest', 'bilinear', 'bicubic'])
@pytest.mark.parametrize('shape, factor, copied', [
    ((1, 3, 2, 5), [1.1, 1.0], True),  # output shape == input shape: ONNX Runtime copies
    ((1, 3, 2, 1), [1.1, 2.0], False),  # rows keep their count but are interpolated
])
def test_same_length_at_a_scale_other_than_one_follows_onnx_runtime(tmp_path, mode, shape,
                                                                    factor, copied):
    _, session = _export(ResizeByFactor(mode, False),
                         (torch.rand(1, 3, 8, 8), torch.tensor([2.0, 2.0])),
                         tmp_path / 'same_size.onnx', 17)
    x = torch.rand(*shape)
    factor = torch.tensor(factor)
    expected = dynamic_resize(x, factor, mode).numpy()
    (actual,) = session.run(None, {'input': x.numpy(), 'factor': factor.numpy()})
    assert actual.shape == expected.shape
    assert abs(actual - expected).max() <= 1e-5
    rows_copied = np.array_equal(expected[:, :, :, :1], x.numpy()[:, :, :, :1])
    assert rows_copied == copied
