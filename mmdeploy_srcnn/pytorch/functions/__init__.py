"""Function rewriters shipped with the package (registered on import)."""
from .interpolate import interpolate__default

__all__ = ['interpolate__default']
