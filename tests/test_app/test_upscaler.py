"""Upscaler: sizes, scale validation, bit depths, grayscale, alpha, model conventions, limits."""
import time

import numpy as np
import pytest
from skimage import data
from sklearn.datasets import load_sample_image

from mmdeploy_srcnn.app import UpscaleError, Upscaler, output_shape, resize_bicubic
from mmdeploy_srcnn.backends import BackendError, build_backend
from mmdeploy_srcnn.utils.image import to_float
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale

PHOTOS = {
    'astronaut': lambda: data.astronaut()[200:264, 180:260],
    'chelsea': lambda: data.chelsea()[80:140, 160:240],
    'china': lambda: load_sample_image('china.jpg')[150:210, 250:330],
}


@pytest.fixture(scope='module')
def upscaler(srcnn_onnx):
    return Upscaler(srcnn_onnx)


@pytest.mark.parametrize('scale, expected', [
    (2, (2, 2)), (2.5, (2.5, 2.5)), ((2, 3), (2, 3)), ([1.5, 4], (1.5, 4)),
    (np.float32(2.3), (np.float32(2.3), np.float32(2.3))),
])
def test_parse_scale(scale, expected):
    assert parse_scale(scale) == tuple(float(np.float32(value)) for value in expected)


@pytest.mark.parametrize('scale', [0, -2, float('nan'), float('inf'), 1e39, 1e-50, 'abc',
                                   (2, 3, 4), (2, 0), None])
def test_bad_scales_are_refused(scale):
    with pytest.raises(ValueError, match='scale .* (must be|is not a number)'):
        parse_scale(scale)
    with pytest.raises(UpscaleError, match='scale .* (must be|is not a number)'):
        output_shape((10, 10), scale)


def test_output_size_follows_the_float32_rule():
    assert output_shape((10, 100), 2.3) == (23, 230)  # float64: 10 x 2.3 -> 22
    assert output_shape((100, 100), 3.3) == (330, 330)  # float64: 329
    assert output_shape((101, 77), (2.5, 2)) == (252, 154)
    assert format_scale(2.3) == '2.3' and format_scale((2, 3)) == '2x3'


@pytest.mark.parametrize('name', sorted(PHOTOS))
@pytest.mark.parametrize('scale', [2, 2.5, (2, 3), 3.3])
def test_photo_size_dtype_and_closeness_to_bicubic(upscaler, name, scale):
    photo = PHOTOS[name]()
    out = upscaler.upscale(photo, scale)
    assert out.shape == output_shape(photo.shape[:2], scale) + (3,) and out.dtype == np.uint8
    # the test model is identity plus noise: its output stays near plain bicubic
    assert np.abs(out.astype(float) - resize_bicubic(photo, scale)).mean() < 20


def _run_directly(onnx_path, image: np.ndarray, scale) -> np.ndarray:
    """The model's raw float output for an HxWx3 float image, HxWx3 (no clipping)."""
    output = build_backend({'type': 'onnxruntime'}, onnx_path).run(
        {'input': image.transpose(2, 0, 1)[None].copy(),
         'factor': np.array(parse_scale(scale), np.float32)})['output']
    return output[0].transpose(1, 2, 0)


def test_model_output_matches_onnxruntime_directly(upscaler, srcnn_onnx):
    photo = to_float(PHOTOS['astronaut']())
    np.testing.assert_allclose(upscaler.upscale(photo, 2.5),
                               np.clip(_run_directly(srcnn_onnx, photo, 2.5), 0, 1), atol=1e-6)


def test_sixteen_bit_stays_sixteen_bit(upscaler):
    photo = PHOTOS['chelsea']()
    deep = photo.astype(np.uint16) * 257
    out16 = upscaler.upscale(deep, 2)
    assert out16.dtype == np.uint16 and out16.max() > 255
    out8 = upscaler.upscale(photo, 2)
    assert np.abs(out16 / 257 - out8).max() <= 0.51


def test_grayscale_stays_grayscale_as_luma_of_the_rgb_result(upscaler, srcnn_onnx):
    gray = data.camera()[100:160, 200:260]
    out = upscaler.upscale(gray, 2.5)
    assert out.shape == (150, 150) and out.dtype == np.uint8
    rgb = _run_directly(srcnn_onnx, to_float(np.dstack([gray] * 3)), 2.5)
    expected = np.rint(np.clip(rgb @ [0.299, 0.587, 0.114], 0, 1) * 255)
    assert np.abs(out - expected).max() <= 1
    assert upscaler.upscale(gray[..., None], 2.5).shape == (150, 150, 1)


@pytest.mark.parametrize('channels', [2, 4])
def test_alpha_is_upscaled_separately_and_kept(upscaler, channels):
    color = PHOTOS['astronaut']()
    alpha = np.zeros(color.shape[:2], np.uint8)
    alpha[16:48, 20:60] = 255
    image = np.dstack([color[..., :channels - 1], alpha])
    out = upscaler.upscale(image, (2, 3))
    assert out.shape == (128, 240, channels) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., -1], resize_bicubic(alpha, (2, 3)))
    color_only = upscaler.upscale(image[..., :-1].squeeze(-1) if channels == 2
                                  else image[..., :3], (2, 3))
    np.testing.assert_array_equal(out[..., :-1].reshape(color_only.shape), color_only)


@pytest.mark.parametrize('scale', [2.5, (3.3, 2.3), 1.7])
def test_resize_bicubic_is_on_the_model_resize_grid(model_variant, scale):
    photo = to_float(PHOTOS['china']())
    onnx_resized = _run_directly(model_variant(resize_only=True), photo, scale)
    np.testing.assert_allclose(resize_bicubic(photo, scale), np.clip(onnx_resized, 0, 1),
                               atol=1e-5)


def test_bgr_model_gets_bgr(model_variant):
    photo = PHOTOS['chelsea']()
    bgr_model = Upscaler(model_variant(color_order='BGR'))
    rgb_model = Upscaler(model_variant())  # same weights, the default (RGB) convention
    np.testing.assert_array_equal(bgr_model.upscale(photo, 2),
                                  rgb_model.upscale(photo[..., ::-1], 2)[..., ::-1])


@pytest.mark.parametrize('fields', [dict(factor_format='nchw'), dict(value_range=(0.0, 255.0))])
def test_factor_layout_and_value_range_come_from_metadata(model_variant, fields):
    # bias-free convolutions, ReLU and Resize are positively homogeneous, so feeding 0..255
    # and dividing the output by 255 gives the same pixels as the 0..1 model
    photo = to_float(PHOTOS['china']())
    np.testing.assert_allclose(Upscaler(model_variant(**fields)).upscale(photo, (2, 3)),
                               Upscaler(model_variant()).upscale(photo, (2, 3)), atol=1e-5)


def test_output_limit_is_checked_before_running(srcnn_onnx):
    upscaler = Upscaler(srcnn_onnx, max_output_pixels=1_000_000)
    photo = data.astronaut()  # 512 x 512: x2 is 1.05 megapixels
    started = time.perf_counter()
    with pytest.raises(UpscaleError, match=r'gives 1024x1024, 1\.05 megapixels, over the limit '
                                           r'of 1$'):
        upscaler.upscale(photo, 2)
    with pytest.raises(UpscaleError, match='over the limit'):
        Upscaler(srcnn_onnx).upscale(photo, 1000)  # 262 gigapixels: would never finish
    assert time.perf_counter() - started < 0.5
    assert upscaler.upscale(photo[:500, :500], 2).shape == (1000, 1000, 3)


def test_empty_output_and_bad_arrays_are_refused(upscaler):
    with pytest.raises(UpscaleError, match='gives an empty image'):
        upscaler.upscale(np.zeros((4, 4), np.uint8), 0.1)
    with pytest.raises(UpscaleError, match='got shape'):
        upscaler.upscale(np.zeros((4, 4, 5), np.uint8), 2)
    with pytest.raises(UpscaleError, match='unsupported pixel type int32'):
        upscaler.upscale(np.zeros((4, 4), np.int32), 2)


def test_a_scale_that_adds_no_pixel_to_a_side_is_refused(upscaler):
    # 8 px x 1.002 is 8 px: engines copy that side where the model would resample it
    with pytest.raises(UpscaleError, match=r'1000x8 \(width x height\) at scale 1.002 adds no '
                                           r'pixel to the height \(8 -> 8\): .* at least 1.125'):
        upscaler.upscale(np.zeros((8, 1000, 3), np.uint8), 1.002)
    with pytest.raises(UpscaleError, match=r'adds no pixel to the width \(10 -> 10\)'):
        upscaler.upscale(np.zeros((8, 10, 3), np.uint8), (2, 1.05))
    with pytest.raises(UpscaleError, match=r'adds no pixel to the height \(8 -> 8\) and the '
                                           r'width \(10 -> 10\): .* at least 1.125'):
        upscaler.upscale(np.zeros((8, 10, 3), np.uint8), 1.05)
    assert upscaler.upscale(np.zeros((8, 10, 3), np.uint8), 1).shape == (8, 10, 3)
    assert upscaler.upscale(np.zeros((8, 10, 3), np.uint8), (2, 1)).shape == (16, 10, 3)


def test_tiny_images(upscaler):
    assert upscaler.upscale(np.full((1, 1, 3), 128, np.uint8), 2.5).shape == (2, 2, 3)
    assert upscaler.upscale(np.zeros((1, 7), np.uint16), 3).shape == (3, 21)


def test_model_without_a_factor_input_is_refused(tmp_path):
    from onnx import TensorProto, helper, save
    graph = helper.make_graph(
        [helper.make_node('Identity', ['input'], ['output'])], 'fixed',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 3, 4, 4])])
    path = tmp_path / 'fixed.onnx'
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(path))
    with pytest.raises(BackendError, match="fixed.onnx: not a dynamic-factor model: it takes "
                                           r"\['input'\]"):
        Upscaler(path)


def test_non_finite_model_output_is_refused_not_written_as_black(tmp_path):
    from onnx import TensorProto, helper, numpy_helper, save
    scales = helper.make_node('Concat', ['ones', 'factor'], ['scales'], axis=0)
    resize = helper.make_node('Resize', ['input', '', 'scales'], ['resized'], mode='cubic')
    poison = helper.make_node('Mul', ['resized', 'nan'], ['output'])  # broken weights do this
    graph = helper.make_graph(
        [scales, resize, poison], 'nan',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, None, None]),
         helper.make_tensor_value_info('factor', TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 3, None, None])],
        [numpy_helper.from_array(np.ones(2, np.float32), 'ones'),
         numpy_helper.from_array(np.array([np.nan], np.float32), 'nan')])
    path = tmp_path / 'nan.onnx'
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), str(path))
    with pytest.raises(BackendError, match=r'nan.onnx: the model returned 48 non-finite '
                                           r'value\(s\) \(NaN or inf\); no image written'):
        Upscaler(path, precision='f32').upscale(np.zeros((2, 2, 3), np.uint8), 2)


def test_constructor_refusals(srcnn_onnx, tmp_path):
    with pytest.raises(ValueError, match=r'tile must be 0 or None \(whole image\) or at least 64'):
        Upscaler(srcnn_onnx, tile=8)
    with pytest.raises(BackendError, match='model file not found'):
        Upscaler(tmp_path / 'missing.onnx')
    with pytest.raises(BackendError, match="unknown backend type 'tensorflow'"):
        Upscaler(srcnn_onnx, backend='tensorflow')


@pytest.mark.openvino
def test_openvino_backend_gives_the_same_pixels(srcnn_onnx):
    photo = to_float(PHOTOS['chelsea']())
    expected = Upscaler(srcnn_onnx).upscale(photo, (2, 2.5))
    tiled = Upscaler(srcnn_onnx, backend='openvino', tile=64).upscale(photo, (2, 2.5))
    np.testing.assert_allclose(tiled, expected, atol=1e-5)
