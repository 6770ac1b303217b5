"""The interface every backend wrapper implements; each wrapper validates its own settings."""
import abc
import difflib
import inspect
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import numpy as np

PathLike = Union[str, os.PathLike]
CANCEL_GRACE_SECONDS = 1.5
"""How long a cancelled run may take to stop before it is abandoned."""


class BackendError(RuntimeError):
    """A backend that cannot be built, is not installed, or cannot run a model."""


class BackendTimeout(BackendError):
    """A run that took longer than its timeout (it was cancelled)."""


# Lines of an engine's message that only say where in its sources it was raised (OpenVINO
# puts them first: "Exception from src/inference/src/cpp/core.cpp:84:").
_SOURCE_LOCATION = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at \S+:\d+:?)$")
_MAX_MESSAGE = 300


def first_line(err: BaseException) -> str:
    """An engine's error message in one line: the lines that say what went wrong, without the
    source locations and stack dumps engines add, joined and cut to a readable length."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    meaningful = [line for line in lines if not _SOURCE_LOCATION.match(line)] or lines
    text = ' '.join(meaningful[:3]) if meaningful else type(err).__name__
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 3] + '...'


class BaseBackend(abc.ABC):
    """Runs one ONNX model file: named numpy inputs in, named numpy outputs out.

    Subclasses load the model in ``__init__`` (whose keyword arguments are the backend's
    ``backend_config`` options) and implement :meth:`_run`. Before that, the file is checked as
    the untrusted data it is (:mod:`.model_file`: external data refused unless
    ``allow_external_data``); ``metadata`` holds its ``metadata_props``.
    """

    def __init__(self, onnx_path: PathLike, allow_external_data: bool = False) -> None:
        from .model_file import inspect_model_file

        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise BackendError(f'{self.onnx_path}: ONNX model file not found')
        self.metadata: Dict[str, str] = inspect_model_file(self.onnx_path, allow_external_data)
        self._stuck = False

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

    def run(self, inputs: Mapping[str, np.ndarray],
            timeout: Optional[float] = None) -> Dict[str, np.ndarray]:
        """Run the model on named inputs; returns every output by name.

        The engine runs in a worker thread so that Ctrl-C (``KeyboardInterrupt``) and
        ``timeout`` (seconds; :class:`BackendTimeout`) can stop it: the engine is asked to
        cancel and is given :data:`CANCEL_GRACE_SECONDS`; one that does not stop is
        abandoned, and this backend refuses further runs.
        """
        if self._stuck:
            raise BackendError(f'{self.onnx_path.name}: a previous run could not be stopped '
                               'and may still be using the engine; load the model again')
        self._check_inputs(inputs)
        self._prepare_run()
        return self._run_cancellable(lambda: self._run(inputs), timeout)

    def _prepare_run(self) -> None:
        """Set up what :meth:`_cancel` acts on, in the caller's thread before the engine runs
        (so that a cancel can never come before it)."""

    @abc.abstractmethod
    def _run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the engine (in a worker thread); raise :class:`BackendError` on failure."""

    def _cancel(self) -> None:
        """Ask the engine to stop the run in progress (default: it cannot be asked)."""

    def _run_cancellable(self, call: Callable[[], Any], timeout: Optional[float]) -> Any:
        outcome: Dict[str, Any] = {}

        def work() -> None:
            try:
                outcome['value'] = call()
            except BaseException as err:  # handed to the caller's thread
                outcome['error'] = err

        worker = threading.Thread(target=work, name='mmdeploy_srcnn-engine', daemon=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.05)
                if deadline is not None and time.monotonic() > deadline and worker.is_alive():
                    self._stop(worker)
                    raise BackendTimeout(f'{self.onnx_path.name}: the run took longer than '
                                         f'the timeout of {timeout:g} s and was stopped')
        except KeyboardInterrupt:
            self._stop(worker)
            raise
        if 'error' in outcome:
            raise outcome['error']
        return outcome['value']

    def _stop(self, worker: threading.Thread) -> None:
        self._cancel()
        worker.join(CANCEL_GRACE_SECONDS)
        self._stuck = worker.is_alive()

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


def check_precision_option(engine: str, precision: Any) -> None:
    """The ``precision`` option: None or one the engine runs (the error names them)."""
    from mmdeploy_srcnn.utils.precision import check_precision

    if precision is None:
        return
    try:
        check_precision(engine, precision)
    except ValueError as err:
        raise BackendError(f'backend_config.precision: {err}') from None


def file_precision(onnx_path: Path, metadata: Mapping[str, str],
                   precision: Optional[str]) -> str:
    """The precision to run ``onnx_path`` at: ``precision``, or the file's own when None.

    An int8 model file runs at ``'int8'`` only, and ``'int8'`` needs an int8 file (the deploy
    tool writes ``end2end_int8.onnx``): a mismatch is an error, not a silent substitution.
    """
    from mmdeploy_srcnn.utils.precision import PRECISION_KEY

    own = 'int8' if metadata.get(PRECISION_KEY) == 'int8' else 'f32'
    if precision is None:
        return own
    if (own == 'int8') != (precision == 'int8'):
        raise BackendError(f'{onnx_path}: {"an int8" if own == "int8" else "a float"} model '
                           f'cannot run at precision {precision!r}'
                           + (' (int8 runs the end2end_int8.onnx written by the deploy tool)'
                              if precision == 'int8' else ''))
    return precision


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
