"""The ONNX reference evaluator as a backend: slow, but an independent reading of the spec.

``onnx.reference.ReferenceEvaluator`` implements each operator in plain numpy from the ONNX
specification. It shares no code with ONNX Runtime or OpenVINO, which makes it a third opinion
when two engines disagree. Use it on small inputs only.
"""
from typing import Any, Dict, List, Mapping

import numpy as np

from mmdeploy_srcnn.registry import BACKENDS

from .base import BackendError, BaseBackend, PathLike, first_line


@BACKENDS.register_module(name='reference')
class ReferenceBackend(BaseBackend):
    """Runs a model with ``onnx.reference.ReferenceEvaluator``.

    Args:
        onnx_path: the model file.
        max_input_pixels: refuse larger inputs (height x width x batch), which would take minutes.
        allow_external_data: let the model keep weights in files of its folder.

    A run cannot be cancelled: after a timeout or Ctrl-C it is abandoned.
    """

    def __init__(self, onnx_path: PathLike, max_input_pixels: int = 64 * 64,
                 allow_external_data: bool = False) -> None:
        super().__init__(onnx_path, allow_external_data)
        import onnx
        from onnx.reference import ReferenceEvaluator

        try:
            self._evaluator = ReferenceEvaluator(onnx.load(str(self.onnx_path)))
        except Exception as err:  # onnx raises DecodeError, ValidationError and others
            raise BackendError(f'{self.onnx_path}: the ONNX reference evaluator cannot load '
                               f'the model: {first_line(err)}') from None
        self.max_input_pixels = max_input_pixels

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        super().validate_options(options)
        limit = options.get('max_input_pixels', 1)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise BackendError(f'backend_config.max_input_pixels: must be an int >= 1, '
                               f'got {limit!r}')

    @property
    def input_names(self) -> List[str]:
        return list(self._evaluator.input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._evaluator.output_names)

    def accepts(self, inputs: Mapping[str, np.ndarray]) -> bool:
        """Whether the inputs are small enough for this slow evaluator."""
        return all(array.ndim != 4 or array.shape[0] * array.shape[2] * array.shape[3]
                   <= self.max_input_pixels for array in inputs.values())

    def _run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if not self.accepts(inputs):
            raise BackendError(f'the reference backend only runs inputs up to '
                               f'{self.max_input_pixels} pixels (batch x height x width)')
        try:
            outputs = self._evaluator.run(None, dict(inputs))
        except Exception as err:  # numpy errors of the operator implementations
            raise BackendError(f'{self.onnx_path.name}: the reference evaluator failed: '
                               f'{first_line(err)}') from None
        return dict(zip(self.output_names, outputs))
