"""MATLAB-style imresize: kernel, weights, sizes and known resampling results."""
import numpy as np
import pytest

from mmdeploy_srcnn.datasets.degradation import cubic, imresize, resize_matrix


def test_cubic_kernel_values():
    np.testing.assert_allclose(cubic(np.array([0.0, 1.0, 2.0, 2.5])), [1, 0, 0, 0])
    # a = -0.5: at 0.5 the kernel is 1.5/8 - 2.5/4 + 1 = 0.5625; at 1.5 it is -0.0625.
    np.testing.assert_allclose(cubic(np.array([0.5, -0.5, 1.5])), [0.5625, 0.5625, -0.0625])


@pytest.mark.parametrize('in_len, out_len', [(12, 6), (12, 4), (10, 25), (7, 7), (9, 3)])
def test_resize_matrix_rows_sum_to_one(in_len, out_len):
    matrix = resize_matrix(in_len, out_len, out_len / in_len)
    assert matrix.shape == (out_len, in_len)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_identity_at_scale_one():
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imresize(image, 1.0), image)


def test_halving_averages_with_antialiased_kernel():
    # Shrinking by 2 stretches the kernel to 8 taps: weights (-3, -9, 29, 111, 111, 29, -9, -3)/256
    # around each output pixel, which is exact on a linear ramp.
    ramp = np.arange(16, dtype=np.float64)[None, :].repeat(4, axis=0)
    out = imresize(ramp, 0.5)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out[0, 2:6], [4.5, 6.5, 8.5, 10.5])
    weights = resize_matrix(16, 8, 0.5)[3, 3:11]
    np.testing.assert_allclose(weights * 256, [-3, -9, 29, 111, 111, 29, -9, -3], atol=0.3)


def test_upscaling_is_interpolating():
    image = np.random.default_rng(1).uniform(0, 1, (6, 7))
    up = imresize(image, 3.0)
    assert up.shape == (18, 21)
    # With an odd integer factor every third output pixel lies on an input pixel centre.
    np.testing.assert_allclose(up[1::3, 1::3], image, atol=1e-12)


def test_output_shape_and_dtypes():
    image = np.full((10, 15, 3), 200, dtype=np.uint8)
    out = imresize(image, output_shape=(4, 6))
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, 200)
    assert imresize(image.astype(np.float32), 1 / 3).shape == (4, 5, 3)  # ceil(10/3), ceil(15/3)
    assert imresize(image.astype(np.float32), 0.5).dtype == np.float64


def test_uint8_output_is_rounded_and_clipped():
    step = np.zeros((8, 8), dtype=np.uint8)
    step[:, 4:] = 255
    out = imresize(step, 2.0)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    float_out = imresize(step.astype(np.float64), 2.0)
    assert float_out.max() > 255 and float_out.min() < 0  # bicubic overshoot, kept in float
    np.testing.assert_array_equal(out, np.clip(np.round(float_out), 0, 255))


def test_invalid_arguments():
    with pytest.raises(ValueError, match='exactly one'):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError, match='exactly one'):
        imresize(np.zeros((4, 4)), 0.5, output_shape=(2, 2))
    with pytest.raises(ValueError, match='H x W'):
        imresize(np.zeros(4), 0.5)
