"""The interface every backend wrapper implements; each wrapper validates its own settings."""
import abc
import difflib
import functools
import inspect
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

import numpy as np

from mmdeploy_srcnn.utils.model_meta import read_onnx_metadata

PathLike = Union[str, os.PathLike]


class BackendError(RuntimeError):
    """A backend that cannot be built, is not installed, or cannot run a model."""


def first_line(err: BaseException) -> str:
    """An engine's error message in one line (engines often add stack dumps below it)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


class BaseBackend(abc.ABC):
    """Runs one ONNX model file: named numpy inputs in, named numpy outputs out.

    Subclasses load the model in ``__init__`` (whose keyword arguments are the backend's
    ``backend_config`` options) and implement :meth:`run`. ``metadata`` holds the model's
    ``metadata_props`` (read with ``onnx``, the same way for every engine).
    """

    def __init__(self, onnx_path: PathLike) -> None:
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise BackendError(f'{self.onnx_path}: ONNX model file not found')

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendError` with an install hint when the engine is missing."""

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Check ``backend_config`` options (without ``type``) before any work is done.

        Unknown names are errors that name the closest known option. Subclasses add checks of
        values by overriding and calling this first.
        """
        parameters = [name for name in inspect.signature(cls.__init__).parameters
                      if name not in ('self', 'onnx_path')]
        for name in options:
            if name not in parameters:
                close = difflib.get_close_matches(name, parameters, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ''
                raise BackendError(f'backend_config.{name}: unknown option of the '
                                   f'{cls.__name__} backend (options: '
                                   f'{", ".join(parameters)}){hint}')

    @property
    @abc.abstractmethod
    def input_names(self) -> List[str]:
        """Names of the graph inputs, in graph order."""

    @property
    @abc.abstractmethod
    def output_names(self) -> List[str]:
        """Names of the graph outputs, in graph order."""

    @functools.cached_property
    def metadata(self) -> Dict[str, str]:
        """The model's ``metadata_props`` as a dict."""
        try:
            return read_onnx_metadata(self.onnx_path)
        except Exception as err:  # onnx raises DecodeError and others for a broken file
            raise BackendError(f'{self.onnx_path}: cannot read the model metadata: '
                               f'{first_line(err)}') from None

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


def check_threads(threads: Any) -> None:
    """The ``threads`` option every engine takes: None or an int >= 1."""
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise BackendError(f'backend_config.threads: must be None or an int >= 1, '
                           f'got {threads!r}')


def check_choice(key: str, value: Any, choices: Any) -> None:
    """A setting that must be one of ``choices``."""
    if value not in choices:
        raise BackendError(f'backend_config.{key}: must be one of {", ".join(choices)}, '
                           f'got {value!r}')
