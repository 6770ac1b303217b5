"""The ONNX reference evaluator as a backend: slow, but an independent reading of the spec.

``onnx.reference.ReferenceEvaluator`` implements each operator in plain numpy from the ONNX
specification. It shares no code with ONNX Runtime or OpenVINO, which makes it a third opinion
when two engines disagree. Use it on small inputs only.
"""
from typing import Dict, List, Mapping

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from mmdeploy_srcnn.registry import BACKENDS

from .base import BackendError, BaseBackend, PathLike


@BACKENDS.register_module(name='reference')
class ReferenceBackend(BaseBackend):
    """Runs a model with ``onnx.reference.ReferenceEvaluator``.

    Args:
        onnx_path: the model file.
        max_input_pixels: refuse larger inputs (height x width x batch), which would take minutes.
    """

    def __init__(self, onnx_path: PathLike, max_input_pixels: int = 64 * 64) -> None:
        super().__init__(onnx_path)
        try:
            self._proto = onnx.load(str(self.onnx_path))
            self._evaluator = ReferenceEvaluator(self._proto)
        except Exception as err:  # onnx raises DecodeError, ValidationError and others
            raise BackendError(f'{self.onnx_path}: the ONNX reference evaluator cannot load '
                               f'the model: {str(err).strip().splitlines()[0]}') from err
        self.max_input_pixels = max_input_pixels

    @property
    def input_names(self) -> List[str]:
        return list(self._evaluator.input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._evaluator.output_names)

    @property
    def metadata(self) -> Dict[str, str]:
        return {prop.key: prop.value for prop in self._proto.metadata_props}

    def accepts(self, inputs: Mapping[str, np.ndarray]) -> bool:
        """Whether the inputs are small enough for this slow evaluator."""
        return all(array.ndim != 4 or array.shape[0] * array.shape[2] * array.shape[3]
                   <= self.max_input_pixels for array in inputs.values())

    def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self._check_inputs(inputs)
        if not self.accepts(inputs):
            raise BackendError(f'the reference backend only runs inputs up to '
                               f'{self.max_input_pixels} pixels (batch x height x width)')
        outputs = self._evaluator.run(None, dict(inputs))
        return dict(zip(self.output_names, outputs))
