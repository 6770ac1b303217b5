"""OpenVINO backend: reads the ONNX file directly and runs it on the CPU.

``openvino`` is an optional dependency (the ``openvino`` extra), imported when a backend is
built; configs naming this backend validate without it.
"""
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from mmdeploy_srcnn.registry import BACKENDS
from mmdeploy_srcnn.utils.precision import ENGINE_DEFAULT

from .base import (BackendError, BaseBackend, PathLike, check_choice, check_precision_option,
                   check_threads, file_precision, first_line)

PERFORMANCE_HINTS = ('LATENCY', 'THROUGHPUT', 'CUMULATIVE_THROUGHPUT')


@BACKENDS.register_module(name='openvino')
class OpenVINOBackend(BaseBackend):
    """Runs a model with OpenVINO.

    Args:
        onnx_path: the model file.
        device: OpenVINO device name (``'CPU'``).
        threads: inference threads; ``None`` lets OpenVINO choose.
        performance_hint: ``'LATENCY'`` (one image at a time, the app's case) or
            ``'THROUGHPUT'``.
        precision: ``'f32'``, ``'bf16'`` or ``'f16'`` (OpenVINO's
            ``INFERENCE_PRECISION_HINT``), ``'int8'`` (an int8 model file, its float parts in
            f32), ``'default'``: no hint, OpenVINO's own choice (bf16 on CPUs with bf16
            instructions), or None: the file's own (f32 for a float file, not OpenVINO's
            default).
        allow_external_data: let the model keep weights in files of its folder.
    """

    def __init__(self, onnx_path: PathLike, device: str = 'CPU', threads: Optional[int] = None,
                 performance_hint: str = 'LATENCY', precision: Optional[str] = None,
                 allow_external_data: bool = False) -> None:
        super().__init__(onnx_path, allow_external_data)
        self.precision = file_precision(self.onnx_path, self.metadata, precision)
        import openvino

        properties = {'PERFORMANCE_HINT': performance_hint}
        if self.precision != ENGINE_DEFAULT:
            properties['INFERENCE_PRECISION_HINT'] = ('f32' if self.precision == 'int8'
                                                      else self.precision)
        if threads is not None:
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
                               f'{first_line(err)}') from None
        self._request = self._compiled.create_infer_request()
        self._last_inputs: Optional[Tuple[Dict[str, Tuple[int, ...]], Dict[str, bytes]]] = None

    @classmethod
    def check_available(cls) -> None:
        try:
            import openvino  # noqa: F401
        except ImportError:
            raise BackendError("the openvino backend needs the 'openvino' package, which is "
                               "not installed: pip install 'mmdeploy_srcnn[openvino]'") from None

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        check_threads(options.get('threads'))
        check_choice('performance_hint', options.get('performance_hint', 'LATENCY'),
                     PERFORMANCE_HINTS)
        check_precision_option('openvino', options.get('precision'))
        device = options.get('device', 'CPU')
        if not isinstance(device, str) or not device:
            raise BackendError(f'backend_config.device: must be an OpenVINO device name such '
                               f"as 'CPU', got {device!r}")

    @property
    def input_names(self) -> List[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._output_names)

    def _refresh_if_only_values_changed(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Work around OpenVINO (2026.4, CPU) reading non-constant ``Resize`` scales only when
        an input shape changes: a new factor with the same image shape would reuse the previous
        factor's interpolation weights (x3 then x3.01 at 64 px: outputs off by 0.3). When the
        shapes repeat but a small input (the factor) changed, one run on a 1-pixel-smaller
        image in between makes OpenVINO take the new values (a few ms)."""
        shapes = {name: array.shape for name, array in inputs.items()}
        small = {name: array.tobytes() for name, array in inputs.items() if array.size <= 16}
        previous, self._last_inputs = self._last_inputs, (shapes, small)
        if previous is None or previous[0] != shapes or previous[1] == small:
            return
        dummy = {name: (array if array.ndim != 4 else np.zeros(
            array.shape[:2] + tuple(max(1, n - 1) if n > 1 else 2 for n in array.shape[2:]),
            array.dtype)) for name, array in inputs.items()}
        self._request.infer(dummy)

    def _cancel(self) -> None:
        self._request.cancel()  # honoured between operations, not inside a Loop

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            self._refresh_if_only_values_changed(inputs)
            results = self._request.infer(dict(inputs))
        except Exception as err:  # OpenVINO raises RuntimeError for shape and memory problems
            raise BackendError(f'{self.onnx_path.name}: OpenVINO failed to run the model: '
                               f'{first_line(err)}') from None
        # The request owns its output buffers: copy before the next call overwrites them.
        return {name: np.array(results[name]) for name in self._output_names}
