"""Offline images shipped inside installed packages, with the project's train/test split.

The images come from scikit-image (``skimage.data``), scikit-learn (``load_sample_image``) and
matplotlib (``cbook.get_sample_data``); none of them is downloaded. These packages are in the
``train``/``test`` extras, not in the runtime dependencies, so a missing one raises an error
that names it. Every image is returned as RGB uint8 H x W x 3; gray images are repeated into
three equal channels (their luminance), which is how the gray textures join RGB training.
"""
import importlib
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from .protocol import as_rgb_uint8

# Photos to test on, the rest (and the gray textures) to train on. motorcycle_left/right are a
# stereo pair: one side per split.
TEST_IMAGES: Tuple[str, ...] = ('astronaut', 'chelsea', 'rocket', 'motorcycle_left',
                                'grace_hopper', 'china')
TRAIN_IMAGES: Tuple[str, ...] = ('coffee', 'motorcycle_right', 'retina', 'hubble_deep_field',
                                 'immunohistochemistry', 'flower',
                                 'brick', 'grass', 'gravel', 'camera', 'moon')
SPLITS: Dict[str, Tuple[str, ...]] = {'train': TRAIN_IMAGES, 'test': TEST_IMAGES}

_INSTALL_HINT = "install the 'test' or 'train' extra, e.g. pip install 'mmdeploy_srcnn[test]'"


def _import(module: str, package: str, name: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ModuleNotFoundError(f"built-in image '{name}' needs {package}, which is not "
                                  f'installed; {_INSTALL_HINT}') from err


def _skimage(name: str, attr: str) -> np.ndarray:
    return getattr(_import('skimage.data', 'scikit-image', name), attr)()


def _motorcycle(name: str, index: int) -> np.ndarray:
    return _import('skimage.data', 'scikit-image', name).stereo_motorcycle()[index]


def _sklearn(name: str, file_name: str) -> np.ndarray:
    return _import('sklearn.datasets', 'scikit-learn', name).load_sample_image(file_name)


def _matplotlib(name: str, file_name: str) -> np.ndarray:
    cbook = _import('matplotlib.cbook', 'matplotlib', name)
    with cbook.get_sample_data(file_name, asfileobj=True) as file:
        encoded = np.frombuffer(file.read(), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


_LOADERS: Dict[str, Callable[[str], np.ndarray]] = {
    **{name: (lambda n, attr=name: _skimage(n, attr))
       for name in ('astronaut', 'chelsea', 'rocket', 'coffee', 'retina', 'hubble_deep_field',
                    'immunohistochemistry', 'brick', 'grass', 'gravel', 'camera', 'moon')},
    'motorcycle_left': lambda n: _motorcycle(n, 0),
    'motorcycle_right': lambda n: _motorcycle(n, 1),
    'china': lambda n: _sklearn(n, 'china.jpg'),
    'flower': lambda n: _sklearn(n, 'flower.jpg'),
    'grace_hopper': lambda n: _matplotlib(n, 'grace_hopper.jpg'),
}
BUILTIN_IMAGES: Tuple[str, ...] = tuple(sorted(_LOADERS))


def load_image(name: str) -> np.ndarray:
    """Load one built-in image by name as an RGB uint8 H x W x 3 array."""
    if name not in _LOADERS:
        raise KeyError(f"unknown built-in image '{name}'; known: {', '.join(BUILTIN_IMAGES)}")
    return as_rgb_uint8(np.asarray(_LOADERS[name](name)), f"built-in image '{name}'")


def load_split(split: str) -> Dict[str, np.ndarray]:
    """Load every image of the 'train' or 'test' split, in split order, keyed by name."""
    if split not in SPLITS:
        raise KeyError(f"unknown split '{split}'; known: {', '.join(SPLITS)}")
    return {name: load_image(name) for name in SPLITS[split]}
