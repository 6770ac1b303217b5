"""ONNX Runtime backend (the default engine)."""
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import onnxruntime as ort

from mmdeploy_srcnn.registry import BACKENDS

from .base import (BackendError, BaseBackend, PathLike, check_choice, check_precision_option,
                   check_threads, file_precision, first_line)

OPTIMIZATION_LEVELS = {
    'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(threads: Optional[int] = None,
                    optimization_level: str = 'all') -> ort.SessionOptions:
    """``SessionOptions`` for the backend's settings (the profiler and the benchmarks add
    their own options to them)."""
    ONNXRuntimeBackend.validate_options({'threads': threads,
                                         'optimization_level': optimization_level})
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMIZATION_LEVELS[optimization_level]
    options.log_severity_level = 4  # errors are raised as ours, not logged in colour
    if threads is not None:
        options.intra_op_num_threads = threads
    return options


@BACKENDS.register_module(name='onnxruntime')
class ONNXRuntimeBackend(BaseBackend):
    """Runs a model with ONNX Runtime on the CPU.

    Args:
        onnx_path: the model file.
        threads: intra-op threads; ``None`` lets ONNX Runtime choose.
        optimization_level: one of ``disable``, ``basic``, ``extended``, ``all``.
        precision: ``'f32'``, or ``'int8'`` for an int8 model file (ONNX Runtime has no
            reduced-precision float execution on x86 CPUs); None: the file's own.
        allow_external_data: let the model keep weights in files of its folder.
    """

    def __init__(self, onnx_path: PathLike, threads: Optional[int] = None,
                 optimization_level: str = 'all', precision: Optional[str] = None,
                 allow_external_data: bool = False) -> None:
        super().__init__(onnx_path, allow_external_data)
        self.precision = file_precision(self.onnx_path, self.metadata, precision)
        options = session_options(threads, optimization_level)
        try:
            self._session = ort.InferenceSession(str(self.onnx_path), options,
                                                 providers=['CPUExecutionProvider'])
        except Exception as err:  # ORT raises its own exception types for bad files
            raise BackendError(f'{self.onnx_path}: ONNX Runtime cannot load the model: '
                               f'{first_line(err)}') from None

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        check_threads(options.get('threads'))
        check_choice('optimization_level', options.get('optimization_level', 'all'),
                     OPTIMIZATION_LEVELS)
        check_precision_option('onnxruntime', options.get('precision'))

    @property
    def input_names(self) -> List[str]:
        return [node.name for node in self._session.get_inputs()]

    @property
    def output_names(self) -> List[str]:
        return [node.name for node in self._session.get_outputs()]

    def _prepare_run(self) -> None:
        self._run_options = ort.RunOptions()  # one per run: a cancelled one stays cancelled
        self._run_options.log_severity_level = 4

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            outputs = self._session.run(None, dict(inputs), self._run_options)
        except Exception as err:  # ORT's Fail/InvalidArgument/RuntimeException, allocation
            raise BackendError(f'{self.onnx_path.name}: ONNX Runtime failed to run the model: '
                               f'{first_line(err)}') from None
        return dict(zip(self.output_names, outputs))

    def _cancel(self) -> None:
        self._run_options.terminate = True  # checked by ONNX Runtime between (sub)graph nodes
