"""Reduced-precision model files made from an exported float model (torch-free)."""
from .calibration import CalibrationSet, builtin_calibration_set, make_calibration_set, model_inputs
from .int8 import CALIBRATION_KEY, METHODS, QuantizationError, conv_names, quantize_int8

__all__ = ['CALIBRATION_KEY', 'METHODS', 'CalibrationSet', 'QuantizationError',
           'builtin_calibration_set', 'conv_names', 'make_calibration_set', 'model_inputs',
           'quantize_int8']
