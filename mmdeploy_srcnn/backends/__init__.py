"""Inference engines behind one interface: named numpy inputs in, named numpy outputs out.

Torch-free by design: the deployed app imports this package.
"""
from .base import BackendError, BaseBackend, backend_class, build_backend
from .onnxruntime import ONNXRuntimeBackend
from .openvino import OpenVINOBackend
from .reference import ReferenceBackend

__all__ = ['BackendError', 'BaseBackend', 'ONNXRuntimeBackend', 'OpenVINOBackend',
           'ReferenceBackend', 'backend_class', 'build_backend']
