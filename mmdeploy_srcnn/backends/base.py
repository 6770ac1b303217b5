"""The interface every backend wrapper implements, and building one from a config dict."""
import abc
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

import numpy as np

from mmdeploy_srcnn.registry import BACKENDS

PathLike = Union[str, os.PathLike]


class BackendError(RuntimeError):
    """A backend that cannot be built or cannot run a model."""


class BaseBackend(abc.ABC):
    """Runs one ONNX model file.

    Subclasses load the model in ``__init__`` and implement :meth:`run`. ``metadata`` holds the
    model's ``metadata_props`` (colour order, value range, factor format ...).
    """

    def __init__(self, onnx_path: PathLike) -> None:
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise BackendError(f'{self.onnx_path}: ONNX model file not found')

    @property
    @abc.abstractmethod
    def input_names(self) -> List[str]:
        """Names of the graph inputs, in graph order."""

    @property
    @abc.abstractmethod
    def output_names(self) -> List[str]:
        """Names of the graph outputs, in graph order."""

    @property
    @abc.abstractmethod
    def metadata(self) -> Dict[str, str]:
        """The model's ``metadata_props`` as a dict."""

    @abc.abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the model on named inputs; returns every output by name."""

    def accepts(self, inputs: Mapping[str, np.ndarray]) -> bool:
        """Whether this backend can run these inputs (a slow one may refuse large ones)."""
        return True

    def _check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        missing = sorted(set(self.input_names) - set(inputs))
        unknown = sorted(set(inputs) - set(self.input_names))
        if missing or unknown:
            raise BackendError(f'{self.onnx_path.name}: inputs do not match the model '
                               f'(missing: {missing or "none"}, unknown: {unknown or "none"}; '
                               f'the model takes {self.input_names})')


def read_onnx_metadata(onnx_path: PathLike) -> Dict[str, str]:
    """``metadata_props`` of an ONNX file, for engines whose API does not expose them."""
    import onnx  # only the engines without their own metadata API pay for this import

    proto = onnx.load(str(onnx_path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}


def backend_class(backend_type: Any) -> type:
    """The wrapper class registered as ``backend_type``; the error lists the known ones."""
    known = ', '.join(sorted(BACKENDS.module_dict))
    if backend_type is None:
        raise BackendError(f"backend_config has no 'type' (known backends: {known})")
    backend_cls = BACKENDS.module_dict.get(backend_type)  # not .get(): see registry.py
    if backend_cls is None:
        raise BackendError(f'unknown backend type {backend_type!r} (known backends: {known})')
    return backend_cls


def build_backend(backend_config: Mapping[str, Any], onnx_path: PathLike) -> BaseBackend:
    """Build the backend named by ``backend_config['type']`` for ``onnx_path``.

    The other keys of ``backend_config`` are the backend's options.
    """
    options = dict(backend_config)
    backend_cls = backend_class(options.pop('type', None))
    try:
        return backend_cls(onnx_path, **options)
    except TypeError as err:  # an option the backend does not take
        raise BackendError(f'{backend_cls.__name__}: bad backend_config option: {err}') from err
