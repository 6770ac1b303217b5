"""High-level steps of a deployment: export, verify."""
from .export import ExportError, torch2onnx
from .verify import VerificationRow, verify_backend

__all__ = ['ExportError', 'VerificationRow', 'torch2onnx', 'verify_backend']
