"""Training pairs: exact LR/HR alignment at integer and fractional scales, sampling options."""
from fractions import Fraction

import numpy as np
import pytest

from mmdeploy_srcnn.datasets import imresize, load_image
from mmdeploy_srcnn.datasets.pairs import PairSampler
from mmdeploy_srcnn.datasets.protocol import as_fraction, make_lr


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((a - b) ** 2))


def test_as_fraction():
    assert as_fraction(2.5) == Fraction(5, 2)
    assert as_fraction(3) == Fraction(3)
    assert as_fraction(2.3) == Fraction(23, 10)
    with pytest.raises(ValueError, match='> 1'):
        as_fraction(1.0)


@pytest.mark.parametrize('scale, hr_shape, lr_shape', [
    (2, (300, 451), (150, 225)), (2.5, (300, 451), (120, 180)), (1.75, (300, 451), (168, 256))])
def test_make_lr_sizes(scale, hr_shape, lr_shape):
    hr, lr = make_lr(np.zeros(hr_shape + (3, ), np.uint8), scale)
    assert lr.shape[:2] == lr_shape and lr.dtype == np.uint8
    assert hr.shape[:2] == (lr_shape[0] * scale, lr_shape[1] * scale)


@pytest.mark.parametrize('scale', [1.75, 2.0, 2.5, 3.0])
def test_patches_are_aligned(scale):
    sampler = PairSampler([load_image('gravel')], [scale], patch_size=64, seed=3)
    got_scale, lr, hr = sampler.sample(4)
    assert got_scale == scale and lr.dtype == np.float32 and 0 <= lr.min() and lr.max() <= 1
    assert hr.shape[2] == lr.shape[2] * scale
    # Upscaling the LR patch back lands on the HR patch; a one-pixel shift is much worse.
    up = np.stack([imresize(x.transpose(1, 2, 0).astype(np.float64), scale) for x in lr])
    up = up.transpose(0, 3, 1, 2)
    inner = (Ellipsis, slice(8, -8), slice(8, -8))
    shifted = (Ellipsis, slice(9, -7), slice(8, -8))
    assert _psnr(up[inner], hr[inner]) > _psnr(up[shifted], hr[inner]) + 1


def test_sampler_is_seeded_and_skips_flat_patches():
    image = load_image('hubble_deep_field')  # mostly black sky
    draw = lambda seed, min_std: PairSampler([image], [2.0, 3.0], patch_size=48,  # noqa: E731
                                             min_std=min_std, seed=seed).sample(8)
    a, b = draw(0, 0.05), draw(0, 0.05)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[2], b[2])
    assert all(patch.std() >= 0.05 for patch in a[2])


def test_scale_weights():
    sampler = PairSampler([load_image('chelsea')], [2.0, 4.0], scale_weights=[0, 1],
                          patch_size=48, seed=0)
    assert {sampler.sample(1)[0] for _ in range(10)} == {4.0}
    with pytest.raises(ValueError, match='scale_weights'):
        PairSampler([load_image('chelsea')], [2.0], scale_weights=[1, 1])
