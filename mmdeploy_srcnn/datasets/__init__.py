"""Training and evaluation data: offline built-in images and the MATLAB-style degradation."""
from .builtin import BUILTIN_IMAGES, SPLITS, TEST_IMAGES, TRAIN_IMAGES, load_image, load_split
from .degradation import imresize, resize_matrix

__all__ = ['BUILTIN_IMAGES', 'SPLITS', 'TEST_IMAGES', 'TRAIN_IMAGES', 'load_image', 'load_split',
           'imresize', 'resize_matrix']
