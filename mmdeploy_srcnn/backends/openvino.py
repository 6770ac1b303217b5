"""OpenVINO backend: reads the ONNX file directly and runs it on the CPU.

``openvino`` is an optional dependency (the ``openvino`` extra); it is imported when a backend
is built, so the registry lists this backend even where the package is missing.
"""
from typing import Dict, List, Mapping, Optional

import numpy as np

from mmdeploy_srcnn.registry import BACKENDS

from .base import BackendError, BaseBackend, PathLike, read_onnx_metadata

PERFORMANCE_HINTS = ('LATENCY', 'THROUGHPUT', 'CUMULATIVE_THROUGHPUT')
PRECISIONS = ('f32', 'bf16', 'f16')


@BACKENDS.register_module(name='openvino')
class OpenVINOBackend(BaseBackend):
    """Runs a model with OpenVINO.

    Args:
        onnx_path: the model file.
        device: OpenVINO device name (``'CPU'``).
        threads: inference threads; ``None`` lets OpenVINO choose.
        performance_hint: ``'LATENCY'`` (one image at a time, the app's case) or
            ``'THROUGHPUT'``.
        precision: inference precision. OpenVINO's own default on CPUs with bfloat16 support
            is ``'bf16'``, which moves outputs by about 5e-3 (and even computes Resize output
            sizes in bfloat16); we default to ``'f32'``.
    """

    def __init__(self, onnx_path: PathLike, device: str = 'CPU', threads: Optional[int] = None,
                 performance_hint: str = 'LATENCY', precision: str = 'f32') -> None:
        super().__init__(onnx_path)
        try:
            import openvino
        except ImportError as err:
            raise BackendError("the openvino backend needs the 'openvino' package: "
                               "pip install 'mmdeploy_srcnn[openvino]'") from err
        if performance_hint not in PERFORMANCE_HINTS:
            raise BackendError(f'unknown OpenVINO performance_hint {performance_hint!r} '
                               f'(choose from {", ".join(PERFORMANCE_HINTS)})')
        if precision not in PRECISIONS:
            raise BackendError(f'unknown OpenVINO precision {precision!r} '
                               f'(choose from {", ".join(PRECISIONS)})')
        properties = {'PERFORMANCE_HINT': performance_hint,
                      'INFERENCE_PRECISION_HINT': precision}
        if threads is not None:
            if threads < 1:
                raise BackendError(f'threads must be >= 1, got {threads}')
            properties['INFERENCE_NUM_THREADS'] = threads
        try:
            core = openvino.Core()
            model = core.read_model(str(self.onnx_path))
            # The ONNX names, read before compilation: fusing an input with a following no-op
            # (a Cast to its own type) gives its port a second name that ``get_any_name`` may
            # return instead.
            self._input_names = [port.get_any_name() for port in model.inputs]
            self._output_names = [port.get_any_name() for port in model.outputs]
            self._compiled = core.compile_model(model, device, properties)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses of its own
            raise BackendError(f'{self.onnx_path}: OpenVINO cannot load the model: '
                               f'{str(err).strip().splitlines()[0]}') from err
        self._request = self._compiled.create_infer_request()
        self._metadata = read_onnx_metadata(self.onnx_path)

    @property
    def input_names(self) -> List[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._output_names)

    @property
    def metadata(self) -> Dict[str, str]:
        return dict(self._metadata)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self._check_inputs(inputs)
        try:
            results = self._request.infer(dict(inputs))
        except Exception as err:  # OpenVINO raises RuntimeError for shape and memory problems
            raise BackendError(f'{self.onnx_path.name}: OpenVINO failed to run the model: '
                               f'{str(err).strip().splitlines()[0]}') from err
        # The request owns its output buffers: copy before the next call overwrites them.
        return {name: np.array(results[name]) for name in self._output_names}
