"""Function rewriters shipped with the package (registered on import)."""
from .interpolate import interpolate__default
from .interpolate_matmul import interpolate__matmul

__all__ = ['interpolate__default', 'interpolate__matmul']
