"""Calibration samples: deploy-time LR images, fed the way the app feeds them."""
import numpy as np
import pytest

from mmdeploy_srcnn.datasets.protocol import make_lr
from mmdeploy_srcnn.quantization import builtin_calibration_set, make_calibration_set, model_inputs
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import QUALITY_SCALES


def images(count: int = 2, size=(120, 150)) -> dict:
    rng = np.random.default_rng(1)
    return {f'image{i}': rng.integers(0, 256, size + (3,), dtype=np.uint8) for i in range(count)}


def test_samples_are_lr_images_with_their_factor():
    calibration = make_calibration_set(images(), ModelConvention(), source='synthetic',
                                       patch=96, patches_per_image=3)
    assert len(calibration.inputs) == 2 * 3 * len(QUALITY_SCALES)
    for index, sample in enumerate(calibration.inputs):
        scale = QUALITY_SCALES[index % len(QUALITY_SCALES)]
        np.testing.assert_array_equal(sample['factor'], np.array([scale, scale], np.float32))
        # make_lr's LR size for a 96 px patch: the side rounded to the scale's grid
        lr_shape = make_lr(np.zeros((96, 96, 3), np.uint8), scale)[1].shape[:2]
        assert sample['input'].shape == (1, 3) + lr_shape
        assert sample['input'].dtype == np.float32
        assert 0.0 <= sample['input'].min() and sample['input'].max() <= 1.0
    assert calibration.description['samples'] == len(calibration.inputs)
    assert calibration.description['images'] == 'synthetic'


def test_sample_is_the_lr_of_a_crop():
    """One image, one patch: the sample equals make_lr of some 64 px crop of the image."""
    image = images(1, size=(70, 72))['image0']
    calibration = make_calibration_set({'one': image}, ModelConvention(), source='one',
                                       scales=[2.0], patch=64, patches_per_image=1, seed=3)
    sample = calibration.inputs[0]['input'][0].transpose(1, 2, 0)
    matches = [(top, left) for top in range(image.shape[0] - 63)
               for left in range(image.shape[1] - 63)
               if np.array_equal(np.rint(sample * 255).astype(np.uint8),
                                 make_lr(image[top:top + 64, left:left + 64], 2.0)[1])]
    assert len(matches) == 1


def test_seed_makes_samples_reproducible():
    first, again, other = (make_calibration_set(images(), ModelConvention(), 'synthetic', seed=s)
                           for s in (0, 0, 1))
    for a, b in zip(first.inputs, again.inputs):
        np.testing.assert_array_equal(a['input'], b['input'])
    assert any(not np.array_equal(a['input'], c['input'])
               for a, c in zip(first.inputs, other.inputs))


@pytest.mark.parametrize('fields', [
    dict(color_order='BGR'),
    dict(value_range=(0.0, 255.0)),
    dict(factor_format='nchw', image_input='x', factor_input='s'),
])
def test_model_inputs_follow_the_convention(fields):
    convention = ModelConvention(**fields)
    lr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    inputs = model_inputs(lr, 2.5, convention)
    assert set(inputs) == {convention.image_input, convention.factor_input}
    expected = lr.astype(np.float32) / 255
    if convention.color_order == 'BGR':
        expected = expected[..., ::-1]
    low, high = convention.value_range
    np.testing.assert_allclose(inputs[convention.image_input][0].transpose(1, 2, 0),
                               expected * (high - low) + low, rtol=1e-6)
    factor = [2.5, 2.5] if convention.factor_format == 'hw' else [1, 1, 2.5, 2.5]
    np.testing.assert_array_equal(inputs[convention.factor_input], np.float32(factor))


@pytest.mark.parametrize('kwargs, message', [
    (dict(patch=200), "calibration image 'image0' (150x120) is smaller than the 200x200 patch"),
    (dict(patch=4), 'need patch >= 8'),
    (dict(patches_per_image=0), 'patches_per_image >= 1'),
    (dict(scales=[]), 'at least one image and one scale'),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        make_calibration_set(images(), ModelConvention(), 'synthetic', **kwargs)


def test_builtin_calibration_uses_the_training_split_only(monkeypatch):
    requested = []

    def fake_load_split(split):
        requested.append(split)
        return images(3)

    monkeypatch.setattr('mmdeploy_srcnn.datasets.load_split', fake_load_split)
    calibration = builtin_calibration_set(ModelConvention(), patch=64, patches_per_image=1)
    assert requested == ['train']
    assert calibration.description['images'] == 'builtin:train'
    assert len(calibration.inputs) == 3 * len(QUALITY_SCALES)
