"""Custom operators that export to ONNX with graph-computed parameters."""
from .dynamic_resize import dynamic_resize, dynamic_resize_to_size

__all__ = ['dynamic_resize', 'dynamic_resize_to_size']
