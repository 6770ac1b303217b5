"""The torch-free upscaling app: one ``.onnx``, any image, any factor.

Imports only numpy, OpenCV, ONNX Runtime (through :mod:`mmdeploy_srcnn.backends`) and mmengine's
torch-free utilities, so it runs where torch is not installed.
"""
from .upscaler import (DEFAULT_MAX_OUTPUT_PIXELS, UpscaleError, Upscaler, output_shape,
                       resize_bicubic)

__all__ = ['DEFAULT_MAX_OUTPUT_PIXELS', 'UpscaleError', 'Upscaler', 'output_shape',
           'resize_bicubic']
