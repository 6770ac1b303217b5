"""Inference engines behind one interface: named numpy inputs in, named numpy outputs out.

Torch-free by design: the deployed app imports this package. The built-in wrappers are imported
when first asked for, so the app pays only for the engine it uses (``onnx``'s reference
evaluator and OpenVINO are not imported by an ONNX Runtime run). More backends can be added
with ``@BACKENDS.register_module(name=...)`` (:data:`mmdeploy_srcnn.registry.BACKENDS`).
"""
import importlib
from typing import Any, List, Mapping

from mmdeploy_srcnn.registry import BACKENDS

from .base import BackendError, BaseBackend, PathLike

BUILTIN_BACKENDS = {
    'onnxruntime': 'mmdeploy_srcnn.backends.onnxruntime',
    'openvino': 'mmdeploy_srcnn.backends.openvino',
    'reference': 'mmdeploy_srcnn.backends.reference',
}

__all__ = ['BUILTIN_BACKENDS', 'BackendError', 'BaseBackend', 'backend_class', 'backend_names',
           'build_backend', 'validate_backend_config']


def backend_names() -> List[str]:
    """Every backend type a config may name: the built-in ones and any registered since."""
    return sorted(set(BUILTIN_BACKENDS) | set(BACKENDS.module_dict))


def backend_class(backend_type: Any) -> type:
    """The wrapper class registered as ``backend_type``; the error lists the known ones."""
    known = ', '.join(backend_names())
    if backend_type is None:
        raise BackendError(f"backend_config has no 'type' (known backends: {known})")
    if backend_type in BUILTIN_BACKENDS and backend_type not in BACKENDS.module_dict:
        importlib.import_module(BUILTIN_BACKENDS[backend_type])  # registers it
    # module_dict, not BACKENDS.get(): mmengine's get() logs through MMLogger, which imports
    # torch, and the app must stay torch-free.
    backend_cls = BACKENDS.module_dict.get(backend_type)
    if backend_cls is None:
        raise BackendError(f'unknown backend type {backend_type!r} (known backends: {known})')
    return backend_cls


def validate_backend_config(backend_config: Mapping[str, Any]) -> type:
    """Check a ``backend_config`` (type, option names and values) without loading a model;
    returns the wrapper class. The engine itself need not be installed for this."""
    options = dict(backend_config)
    backend_cls = backend_class(options.pop('type', None))
    backend_cls.validate_options(options)
    return backend_cls


def build_backend(backend_config: Mapping[str, Any], onnx_path: PathLike) -> BaseBackend:
    """Build the backend named by ``backend_config['type']`` for ``onnx_path``.

    The other keys of ``backend_config`` are the backend's options; the engine must be
    installed (:meth:`BaseBackend.check_available`).
    """
    backend_cls = validate_backend_config(backend_config)
    backend_cls.check_available()
    options = {key: value for key, value in backend_config.items() if key != 'type'}
    return backend_cls(onnx_path, **options)
