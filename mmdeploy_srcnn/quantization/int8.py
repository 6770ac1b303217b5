"""Post-training static int8 quantization of an exported model's convolutions (QDQ format).

The result is an ordinary ONNX file in which each convolution reads int8 weights (one scale per
output channel) and a uint8 activation through ``DequantizeLinear`` and writes float. OpenVINO
compiles this into int8 convolutions. ONNX Runtime runs it correctly but as float convolutions of
the dequantized values: it fuses only a convolution whose output is quantized too (see
``quantize_conv_outputs``). Nothing else is quantized: the resize subgraph, the size arithmetic,
the factor-dependent biases and the global residual stay float, so the output size and the
bicubic base image are exactly those of the float model.

``onnxruntime.quantization`` does the calibration and the QDQ insertion; this module chooses the
nodes, gives float consumers back the float tensors the tool routed through int8, carries the
source model's metadata over, and writes the file atomically after the ONNX checker passed.
Torch-free.
"""
import contextlib
import importlib.metadata
import json
import logging
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Union

import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)

from mmdeploy_srcnn.utils.fileio import atomic_path, file_sha256
from mmdeploy_srcnn.utils.precision import FLOAT_MODEL_SHA256_KEY, PRECISION_KEY

from .calibration import CalibrationSet, ModelInputs

PathLike = Union[str, Path]

METHODS: Dict[str, CalibrationMethod] = {
    'minmax': CalibrationMethod.MinMax,
    'entropy': CalibrationMethod.Entropy,
    'percentile': CalibrationMethod.Percentile,
}
#: The ``'percentile'`` method's range: the central 99.99 % of each activation's values.
PERCENTILE = 99.99
#: ``metadata_props`` key of the calibration record in the quantized model.
CALIBRATION_KEY = 'mmdeploy_srcnn.int8_calibration'
_QDQ_OPS = ('QuantizeLinear', 'DequantizeLinear')


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime.quantization logs advice through the root logger; keep it off stderr."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class QuantizationError(RuntimeError):
    """A model that cannot be quantized as asked."""


class _Samples(CalibrationDataReader):
    """Feeds a fixed list of model inputs to the calibrator, a range at a time.

    The calibrator is driven one sample per range (``CalibStridedMinMax = 1``): the histogram
    methods stack a range's tensors into one array, which fails for samples of different sizes
    (each factor gives another output size), and one sample at a time also bounds memory.
    """

    def __init__(self, samples: Sequence[ModelInputs]) -> None:
        self._samples = list(samples)
        self._pending = iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._pending = iter(self._samples[start_index:end_index])

    def get_next(self) -> Optional[ModelInputs]:
        return next(self._pending, None)


def conv_names(model: onnx.ModelProto) -> List[str]:
    """Names of the model's ``Conv`` nodes in graph order; unnamed ones are an error, since
    quantization selects nodes by name."""
    convs = [node for node in model.graph.node if node.op_type == 'Conv']
    if any(not node.name for node in convs):
        raise QuantizationError('the model has unnamed Conv nodes; name them to quantize')
    return [node.name for node in convs]


def _check_float_model(model: onnx.ModelProto, source: Path) -> None:
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    quantized = [node.name for node in model.graph.node if node.op_type in _QDQ_OPS]
    if metadata.get(PRECISION_KEY, 'f32') != 'f32' or quantized:
        raise QuantizationError(f'{source}: already quantized (metadata precision '
                                f'{metadata.get(PRECISION_KEY)!r}, {len(quantized)} Q/DQ '
                                'nodes); quantize the float model')


def _check_calibration_inputs(model: onnx.ModelProto, calibration: CalibrationSet) -> None:
    initializers = {tensor.name for tensor in model.graph.initializer}
    expected = sorted(value.name for value in model.graph.input if value.name not in initializers)
    for index, sample in enumerate(calibration.inputs):
        if sorted(sample) != expected:
            raise QuantizationError(f'calibration sample {index} has inputs {sorted(sample)}, '
                                    f'the model takes {expected}')


def _restore_float_inputs(model: onnx.ModelProto, quantized: Set[str]) -> None:
    """Give float nodes back the float tensors that QDQ insertion routed through int8.

    The tool replaces a quantized activation by its dequantized copy in *every* consumer; the
    resize's output also feeds the global residual ``Add``, which must keep the exact bicubic
    image. Outputs of quantized nodes (with ``quantize_conv_outputs``) are meant to be read as
    int8 and keep their copies.
    """
    nodes = model.graph.node
    made_by = {output: node for node in nodes for output in node.output}
    float_source = {}  # dequantized activation -> the float tensor it was made from
    for dequant in (node for node in nodes if node.op_type == 'DequantizeLinear'):
        quant = made_by.get(dequant.input[0])
        if quant is None or quant.op_type != 'QuantizeLinear':
            continue  # a weight or bias: int8 initializer -> DequantizeLinear
        producer = made_by.get(quant.input[0])
        if producer is None or producer.name not in quantized:
            float_source[dequant.output[0]] = quant.input[0]
    for node in nodes:
        if node.name in quantized or node.op_type in _QDQ_OPS:
            continue
        for index, name in enumerate(node.input):
            if name in float_source:
                node.input[index] = float_source[name]


def quantize_int8(fp32_onnx: PathLike, out_path: PathLike, calibration: CalibrationSet,
                  method: str = 'minmax', per_channel: bool = True,
                  symmetric_activations: bool = False,
                  float_convs: Sequence[str] = (),
                  quantize_conv_outputs: bool = False) -> Path:
    """Quantize the convolutions of ``fp32_onnx`` to int8 and write ``out_path``.

    Args:
        fp32_onnx: the exported float model.
        out_path: where the int8 model goes (written atomically).
        calibration: inputs the activation ranges are measured on (see
            :func:`~mmdeploy_srcnn.quantization.calibration.builtin_calibration_set`).
        method: activation range estimate: ``'minmax'``, ``'entropy'`` or ``'percentile'``.
        per_channel: one weight scale per output channel (else one per tensor).
        symmetric_activations: activation ranges symmetric around 0 (int8 activations).
        float_convs: names of ``Conv`` nodes to leave in float (see :func:`conv_names`).
        quantize_conv_outputs: also round each convolution's output to int8 (the form ONNX
            Runtime fuses into ``QLinearConv``). Off by default: the outputs are summed with the
            factor-dependent bias before the ReLU, and rounding them costs more quality than
            everything else together (``benchmarks/int8_quality.py --ablation``).

    Returns:
        ``out_path``. Its ``metadata_props`` are the source model's plus
        ``mmdeploy_srcnn.precision = 'int8'`` and ``mmdeploy_srcnn.int8_calibration``, a JSON
        record of the tool, settings and calibration data.

    Raises:
        QuantizationError: unknown method or node names, no convolution left to quantize, an
            already quantized model, calibration samples the model cannot run, or a result the
            ONNX checker rejects.
    """
    source, out_path = Path(fp32_onnx), Path(out_path)
    if method not in METHODS:
        raise QuantizationError(f'unknown calibration method {method!r} '
                                f'(choose from {", ".join(METHODS)})')
    float_sha256 = file_sha256(source)  # the bytes quantized, recorded in the int8 file
    model = onnx.load(str(source))
    _check_float_model(model, source)
    convs = conv_names(model)
    unknown = sorted(set(float_convs) - set(convs))
    if unknown:
        raise QuantizationError(f'float_convs {unknown} are not Conv nodes of {source.name} '
                                f'(its Conv nodes: {convs})')
    to_quantize = [name for name in convs if name not in set(float_convs)]
    if not to_quantize:
        raise QuantizationError(f'{source.name}: no Conv node left to quantize')
    _check_calibration_inputs(model, calibration)

    activation_type = QuantType.QInt8 if symmetric_activations else QuantType.QUInt8
    with tempfile.TemporaryDirectory(prefix='int8.') as tmp:
        quantized_path = Path(tmp) / 'quantized.onnx'
        try:
            with _quiet_root_logger():  # its advice to pre-process is not for our users
                quantize_static(
                    model, quantized_path, _Samples(calibration.inputs),
                    quant_format=QuantFormat.QDQ, op_types_to_quantize=['Conv'],
                    nodes_to_quantize=to_quantize, per_channel=per_channel,
                    activation_type=activation_type, weight_type=QuantType.QInt8,
                    calibrate_method=METHODS[method],
                    extra_options={'ActivationSymmetric': symmetric_activations,
                                   'WeightSymmetric': True,
                                   'OpTypesToExcludeOutputQuantization': (
                                       [] if quantize_conv_outputs else ['Conv']),
                                   'CalibPercentile': PERCENTILE,
                                   'CalibStridedMinMax': 1})
        except Exception as err:  # ORT's own exception types from calibration runs, and others
            raise QuantizationError(f'{source.name}: quantization failed: '
                                    f'{str(err).strip().splitlines()[0]}') from err
        quantized = onnx.load(str(quantized_path))
    _restore_float_inputs(quantized, set(to_quantize))

    metadata = {prop.key: prop.value for prop in model.metadata_props}
    metadata[PRECISION_KEY] = 'int8'
    metadata[FLOAT_MODEL_SHA256_KEY] = float_sha256
    metadata[CALIBRATION_KEY] = json.dumps({
        'tool': f'onnxruntime.quantization {importlib.metadata.version("onnxruntime")}',
        'format': 'QDQ', 'method': method,
        'weights': f'int8 symmetric, {"per channel" if per_channel else "per tensor"}',
        'activations': 'int8 symmetric' if symmetric_activations else 'uint8 asymmetric',
        'conv_outputs': 'int8' if quantize_conv_outputs else 'float',
        'quantized_nodes': to_quantize, 'float_convs': list(float_convs),
        'data': calibration.description,
    }, sort_keys=True)
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, metadata)
    try:
        onnx.checker.check_model(quantized, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise QuantizationError(f'the quantized model fails the ONNX checker: '
                                f'{str(err).strip().splitlines()[0]}') from err
    with atomic_path(out_path) as tmp_path:
        onnx.save(quantized, str(tmp_path))
    return out_path
