"""Metrics: known values, conventions, and bicubic reference figures end to end."""
import math

import numpy as np
import pytest

from mmdeploy_srcnn.datasets import imresize, load_image
from mmdeploy_srcnn.datasets.protocol import make_lr
from mmdeploy_srcnn.utils.metrics import psnr, rgb_to_y, ssim

# Bicubic Y-PSNR (dB) at x2 / x3 / x4 under the standard protocol (MATLAB imresize LR, Y channel,
# scale pixels shaved): reference figures that a correct pipeline reproduces within 0.05 dB.
BICUBIC_REFERENCES = {
    'astronaut': (31.71, 28.68, 26.84),
    'chelsea': (35.26, 32.89, 31.48),
    'grace_hopper': (30.45, 27.58, 25.94),
    'china': (24.35, 23.02, 22.42),
}


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    image = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    y = rgb_to_y(image)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481, 16 + 24.966], atol=1e-9)
    assert y.dtype == np.float64


def test_rgb_to_y_rejects_gray():
    with pytest.raises(ValueError, match='H x W x 3'):
        rgb_to_y(np.zeros((4, 4)))


def test_psnr_known_value_and_shave():
    a = np.zeros((10, 10))
    b = np.zeros((10, 10))
    b[2:8, 2:8] = 10.0  # MSE 100 inside the 6 x 6 centre
    assert psnr(a, b, shave=2) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 36))
    assert psnr(a, a) == math.inf


def test_psnr_checks_shapes_and_shave():
    with pytest.raises(ValueError, match='differ in shape'):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match='cannot shave'):
        psnr(np.zeros((4, 4)), np.zeros((4, 4)), shave=2)


def test_ssim_identity_constant_and_bounds():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (40, 50))
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 40, image.shape), 0, 255)
    assert 0.0 < ssim(image, noisy) < 0.9
    assert ssim(image, noisy, shave=3) != ssim(image, noisy)
    # Two constant images: only the luminance term remains.
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1)
    assert ssim(np.full((20, 20), 100.0), np.full((20, 20), 120.0)) == pytest.approx(expected)


def test_ssim_rgb_is_channel_mean():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 255, (2, 30, 30, 3))
    per_channel = [ssim(a[..., c], b[..., c]) for c in range(3)]
    assert ssim(a, b) == pytest.approx(np.mean(per_channel))


@pytest.mark.parametrize('name', sorted(BICUBIC_REFERENCES))
def test_bicubic_references_reproduced(name):
    hr_full = load_image(name)
    for scale, reference in zip((2, 3, 4), BICUBIC_REFERENCES[name]):
        hr, lr = make_lr(hr_full, scale)
        bicubic = imresize(lr, scale)
        assert bicubic.shape == hr.shape
        value = psnr(rgb_to_y(bicubic), rgb_to_y(hr), shave=scale)
        assert value == pytest.approx(reference, abs=0.05), (name, scale)
