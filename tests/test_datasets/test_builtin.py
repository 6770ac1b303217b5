"""Built-in offline images: names, split, format, and the missing-package error."""
import sys

import numpy as np
import pytest

from mmdeploy_srcnn.datasets import (BUILTIN_IMAGES, TEST_IMAGES, TRAIN_IMAGES, load_image,
                                     load_split)


def test_split_is_disjoint_and_complete():
    assert len(TEST_IMAGES) == 6 and len(TRAIN_IMAGES) == 11
    assert not set(TEST_IMAGES) & set(TRAIN_IMAGES)
    assert set(TEST_IMAGES) | set(TRAIN_IMAGES) == set(BUILTIN_IMAGES)


def test_test_split_images_are_rgb_uint8():
    images = load_split('test')
    assert list(images) == list(TEST_IMAGES)
    shapes = {name: image.shape for name, image in images.items()}
    assert shapes == {'astronaut': (512, 512, 3), 'chelsea': (300, 451, 3),
                      'rocket': (427, 640, 3), 'motorcycle_left': (500, 741, 3),
                      'grace_hopper': (600, 512, 3), 'china': (427, 640, 3)}
    for image in images.values():
        assert image.dtype == np.uint8 and image.flags['C_CONTIGUOUS']
        assert image.std() > 20  # real content, not a placeholder


def test_gray_textures_become_three_equal_channels():
    brick = load_image('brick')
    assert brick.shape == (512, 512, 3)
    np.testing.assert_array_equal(brick[..., 0], brick[..., 1])
    np.testing.assert_array_equal(brick[..., 0], brick[..., 2])


def test_stereo_pair_sides_differ():
    left, right = load_image('motorcycle_left'), load_image('motorcycle_right')
    assert left.shape == right.shape and not np.array_equal(left, right)


def test_unknown_names():
    with pytest.raises(KeyError, match='unknown built-in image'):
        load_image('lena')
    with pytest.raises(KeyError, match='unknown split'):
        load_split('val')


@pytest.mark.parametrize('name, module, package', [
    ('china', 'sklearn.datasets', 'scikit-learn'),
    ('astronaut', 'skimage.data', 'scikit-image'),
    ('grace_hopper', 'matplotlib.cbook', 'matplotlib'),
])
def test_missing_package_is_named(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(ModuleNotFoundError, match=f'needs {package}.*pip install'):
        load_image(name)
