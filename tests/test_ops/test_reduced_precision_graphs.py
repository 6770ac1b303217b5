"""Exported resize graphs run in bfloat16 and float16: sizes exact, values within tolerance.

On any CPU: :func:`support.precision.round_floats` makes ONNX Runtime store every float
tensor in the low precision, keeping in float32 only what engines keep (Resize's scales).
On this CPU too: OpenVINO with its default precision (bf16 where the CPU has it, else f32)
and with an explicit bf16 hint.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from support.models import AllModes, scale_aware_srcnn
from support.precision import low_precision_atol, round_floats

from mmdeploy_srcnn.apis import torch2onnx
from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.utils.sizes import resized_length

# Opset 18: Resize takes the [scale_h, scale_w] factor unchanged (its ``axes`` attribute).
EXPORTERS = {'torchscript': {'onnx_config.opset_version': 18},
             'dynamo': {'onnx_config.exporter': 'dynamo', 'onnx_config.opset_version': 18}}
LOW = {'bf16': TensorProto.BFLOAT16, 'fp16': TensorProto.FLOAT16}
CASES = [  # (height, width), (scale_h, scale_w)
    ((200, 289), (3.0, 3.0)),  # 289 and 867 are not bfloat16 numbers (289 -> 288)
    ((50, 37), (2.3, 2.3)),  # 2.3 is not a bfloat16 number either (-> 2.296875)
    ((31, 40), (1.7, 0.6)), ((64, 48), (4.0, 1.5)), ((11, 11), (1.1, 4.0)),
    ((9, 9), (1.05, 1.5)), ((3, 5), (1.2, 1.1)),  # an axis keeps its size; the whole image
]


def _export(model, folder, overrides):
    cfg = load_deploy_config('configs/srcnn_dynamic.py', overrides)
    return onnx.load(str(torch2onnx(model.eval(), cfg, folder)))


def _run(model, image, scale):
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    return session.run(None, {'input': image, 'factor': np.array(scale, np.float32)})[0]


@pytest.fixture(scope='module', params=list(EXPORTERS))
def all_modes(request, tmp_path_factory):
    """{matmul: ONNX model of :class:`AllModes`} for one exporter."""
    folder = tmp_path_factory.mktemp(request.param)
    return {matmul: _export(AllModes(), folder / str(matmul),
                            {**EXPORTERS[request.param], 'onnx_config.matmul_resize': matmul})
            for matmul in (True, False)}


def _graph(inputs, nodes, output):
    graph = helper.make_graph(nodes, 'g', inputs, [output])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])


def test_round_floats_rounds_what_engines_round_and_keeps_resize_scales():
    size = helper.make_tensor_value_info('size', TensorProto.FLOAT, [1])
    factor = helper.make_tensor_value_info('factor', TensorProto.FLOAT, [2])
    # The old graph's size rule, floor(in * scale), as float arithmetic.
    arithmetic = _graph([size, factor], [
        helper.make_node('Gather', ['factor', 'first'], ['scale'], axis=0),
        helper.make_node('Mul', ['size', 'scale'], ['product']),
        helper.make_node('Floor', ['product'], ['out'])],
        helper.make_tensor_value_info('out', TensorProto.FLOAT, [1]))
    arithmetic.graph.initializer.append(helper.make_tensor('first', TensorProto.INT64, [], [0]))
    feed = {'size': np.array([289.0], np.float32), 'factor': np.array([3.0, 3.0], np.float32)}
    assert _run_feed(arithmetic, feed) == 867
    assert _run_feed(round_floats(arithmetic, TensorProto.BFLOAT16), feed) == 864  # 288 x 3
    assert _run_feed(round_floats(arithmetic, TensorProto.FLOAT16), feed) == 867
    image = helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 50, 37])
    resize = _graph([image, factor], [
        helper.make_node('Resize', ['image', '', 'factor'], ['out'], axes=[2, 3])],
        helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 1, 'h', 'w']))
    feed = {'image': np.zeros((1, 1, 50, 37), np.float32),
            'factor': np.array([2.3, 2.3], np.float32)}
    for low in LOW.values():
        assert _run_feed(round_floats(resize, low), feed).shape == (1, 1, 115, 85)


def _run_feed(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    return session.run(None, feed)[0]


@pytest.mark.parametrize('precision', list(LOW))
@pytest.mark.parametrize('matmul', [True, False], ids=['matmul', 'plain'])
def test_resize_graphs_keep_sizes_and_values_in_low_precision(all_modes, matmul, precision):
    model = all_modes[matmul]
    low_model = round_floats(model, LOW[precision])
    rng = np.random.default_rng(0)
    for size, scale in CASES:
        image = rng.random((1, 3, *size), dtype=np.float32)
        expected = _run(model, image, scale)
        assert expected.shape[2:] == tuple(resized_length(n, s) for n, s in zip(size, scale))
        actual = _run(low_model, image, scale)
        assert actual.shape == expected.shape, (size, scale)
        assert np.abs(actual - expected).max() <= low_precision_atol(LOW[precision])


@pytest.fixture(scope='module')
def srcnn_model(tmp_path_factory):
    """The shipped architecture exported as deployed (TorchScript, matmul resize), opset 18."""
    return _export(scale_aware_srcnn(), tmp_path_factory.mktemp('srcnn'),
                   EXPORTERS['torchscript'])


@pytest.mark.parametrize('precision', list(LOW))
def test_srcnn_keeps_sizes_and_values_in_low_precision(srcnn_model, precision):
    low_model = round_floats(srcnn_model, LOW[precision])
    rng = np.random.default_rng(1)
    for size, scale in CASES[:4]:
        image = rng.random((1, 3, *size), dtype=np.float32)
        expected = _run(srcnn_model, image, scale)
        actual = _run(low_model, image, scale)
        assert actual.shape == expected.shape, (size, scale)
        assert np.abs(actual - expected).max() <= low_precision_atol(LOW[precision])


@pytest.mark.parametrize('scale', [1.5, 2.0, 3.0, 4.0])
def test_default_opset_is_exact_in_bf16_for_bfloat16_factors(tmp_path, scale):
    """Before opset 18 a [scale_h, scale_w] factor reaches Resize through a Concat, which a
    bf16 engine rounds: still exact for factors that bfloat16 holds, such as these."""
    model = _export(scale_aware_srcnn(), tmp_path, {'onnx_config.opset_version': 17})
    image = np.random.default_rng(2).random((1, 3, 200, 289), dtype=np.float32)
    expected = _run(model, image, (scale, scale))
    actual = _run(round_floats(model, TensorProto.BFLOAT16), image, (scale, scale))
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= low_precision_atol(TensorProto.BFLOAT16)


@pytest.mark.parametrize('hint', [None, 'bf16'], ids=['default', 'bf16'])
def test_openvino_keeps_sizes_and_values_with_its_default_and_bf16(srcnn_model, tmp_path, hint):
    """On CPUs without bfloat16, OpenVINO runs both in f32; the assertions hold either way."""
    import openvino as ov
    path = tmp_path / 'srcnn.onnx'
    onnx.save(srcnn_model, str(path))
    core = ov.Core()
    compiled = core.compile_model(str(path), 'CPU',
                                  {} if hint is None else {'INFERENCE_PRECISION_HINT': hint})
    has_bf16 = 'BF16' in core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    used = compiled.get_property('INFERENCE_PRECISION_HINT')
    assert used == (ov.Type.bf16 if has_bf16 else ov.Type.f32), used
    rng = np.random.default_rng(3)
    for size, scale in CASES[:4]:
        image = rng.random((1, 3, *size), dtype=np.float32)
        expected = _run(srcnn_model, image, scale)
        actual = compiled({'input': image, 'factor': np.array(scale, np.float32)})[0]
        assert actual.shape == expected.shape, (size, scale)
        assert np.abs(actual - expected).max() <= low_precision_atol(TensorProto.BFLOAT16)
