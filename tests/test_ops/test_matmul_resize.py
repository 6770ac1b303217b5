"""The matmul resize operator: eager result, and its exported graph against ONNX ``Resize``.

Per exporter, one model holding all five mode cases (concatenated along channels) is exported
twice, as the matrix-product graph and as plain ``Resize``, and both run on ONNX Runtime and
OpenVINO. Reduced precision: test_precision.py.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.models import MODE_CASES, AllModes

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.ops import dynamic_resize, interpolation
from mmdeploy_srcnn.ops.matmul_resize import matmul_resize
from mmdeploy_srcnn.utils.sizes import resized_length

EXPORTERS = {'torchscript': {}, 'dynamo': {'onnx_config.exporter': 'dynamo',
                                           'onnx_config.opset_version': 18}}
ATOL = 1e-5  # against ONNX Runtime's Resize, on inputs in [0, 1]
CASES = [  # (height, width), (scale_h, scale_w): odd sizes, unequal and non-integer scales
    ((7, 9), (2.0, 3.0)), ((13, 5), (2.5, 1.7)), ((20, 31), (3.0, 3.0)), ((1, 6), (3.3, 0.5)),
    ((11, 11), (1.1, 4.0)), ((2, 1), (1.1, 2.0)),  # (2, 1) x 1.1: that axis keeps its size
    ((4, 4), (1.0, 1.0)), ((3, 5), (1.2, 1.1)),  # same shape: ONNX Runtime copies
    ((16, 12), (0.5, 0.75)), ((40, 30), (0.2, 0.3)),  # downscale
    ((9, 9), (1.05, 1.5)), ((30, 8), (1.02, 3.0)),  # one axis keeps its size, the other not
    ((8, 10), (2.5, 1.25)),  # j / scale a whole number (nearest reads exactly that pixel)
]


@pytest.mark.parametrize('mode, align_corners', MODE_CASES)
@pytest.mark.parametrize('size, scale', CASES)
def test_eager_is_the_interpolation_matrix_product(mode, align_corners, size, scale):
    x = torch.rand(2, 3, *size)
    factor = torch.tensor(scale)
    out_size = tuple(resized_length(n, s) for n, s in zip(size, factor.tolist()))
    expected = interpolation.resize(x, out_size, tuple(factor.tolist()), mode, align_corners)
    actual = matmul_resize(x, factor, mode, align_corners)
    torch.testing.assert_close(actual, expected, atol=0, rtol=0)
    torch.testing.assert_close(actual, dynamic_resize(x, factor, mode, align_corners),
                               atol=0, rtol=0)


def test_bad_mode_is_an_error_before_any_work():
    with pytest.raises(ValueError, match='unsupported resize mode'):
        matmul_resize(torch.rand(1, 1, 2, 2), torch.tensor([2.0, 2.0]), 'area')
    with pytest.raises(ValueError, match='align_corners=True is not defined for nearest'):
        matmul_resize(torch.rand(1, 1, 2, 2), torch.tensor([2.0, 2.0]), 'nearest', True)


@pytest.fixture(scope='module', params=list(EXPORTERS))
def sessions(request, tmp_path_factory):
    """{matmul: (proto, ONNX Runtime session, path)} of :class:`AllModes` for one exporter."""
    folder = tmp_path_factory.mktemp(request.param)
    result = {}
    for matmul in (True, False):
        cfg = load_deploy_config('configs/srcnn_dynamic.py',
                                 {**EXPORTERS[request.param],
                                  'onnx_config.matmul_resize': matmul})
        path = torch2onnx(AllModes().eval(), cfg, folder / str(matmul))
        result[matmul] = (onnx.load(str(path)),
                          ort.InferenceSession(str(path), providers=['CPUExecutionProvider']),
                          path)
    return result


def _run(session, image, scale):
    return session.run(None, {'input': image, 'factor': np.array(scale, np.float32)})[0]


# Nodes that may output float tensors: Resize computes every weight, the rest select or
# move them; no float arithmetic, so no float rounding to go wrong in bf16 (test_precision.py).
FLOAT_NODES = {'Resize', 'OneHot', 'Expand', 'Unsqueeze', 'Gather', 'Where', 'Transpose',
               'MatMul', 'Slice', 'Concat', 'Constant', 'Cast'}


def test_graph_computes_weights_with_resize_and_sizes_with_integers(sessions):
    matmul_proto, plain_proto = sessions[True][0], sessions[False][0]
    inferred = onnx.shape_inference.infer_shapes(matmul_proto, strict_mode=True).graph
    float_values = {value.name for value in (*inferred.value_info, *inferred.output)
                    if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    float_producers = {node.op_type for node in inferred.node
                       if any(name in float_values for name in node.output)}
    assert float_producers <= FLOAT_NODES, float_producers - FLOAT_NODES
    ops = [node.op_type for node in matmul_proto.graph.node]
    # Per mode case and axis: one Resize for the output size, one for the weights; two MatMul
    # apply the matrices to the image.
    assert ops.count('Resize') == 4 * len(MODE_CASES)
    assert ops.count('MatMul') == 2 * len(MODE_CASES)
    assert [n.op_type for n in plain_proto.graph.node].count('Resize') == len(MODE_CASES)


@pytest.mark.parametrize('size, scale', CASES)
def test_matmul_graph_equals_onnx_resize(sessions, size, scale):
    image = np.random.default_rng(0).random((2, 3, *size), dtype=np.float32)
    actual = _run(sessions[True][1], image, scale)
    expected = _run(sessions[False][1], image, scale)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= ATOL


def test_matmul_graph_equals_eager(sessions):
    image = np.random.default_rng(1).random((1, 3, 10, 13), dtype=np.float32)
    scale = (2.3, 3.3)
    with torch.no_grad():
        expected = torch.cat([matmul_resize(torch.from_numpy(image), torch.tensor(scale), mode,
                                            align_corners)
                              for mode, align_corners in MODE_CASES], dim=1).numpy()
    actual = _run(sessions[True][1], image, scale)
    assert actual.shape == expected.shape
    # Eager computes the weights itself, the graph takes ONNX Runtime's: float32 rounding.
    assert np.abs(actual - expected).max() <= ATOL


def test_openvino_runs_the_graph_as_its_own_resize(sessions):
    """The weights come from OpenVINO's Resize (Interpolate), so the graph equals OpenVINO's
    plain Resize; that equals ONNX Runtime's except with align_corners, where OpenVINO's
    coordinates differ (by up to 5e-5 at 300 px, measured)."""
    image = np.random.default_rng(2).random((1, 3, 300, 257), dtype=np.float32)
    matmul, plain = (build_backend({'type': 'openvino'}, sessions[variant][2])
                     for variant in (True, False))
    half_pixel = [case for case, (mode, align_corners) in enumerate(MODE_CASES)
                  if not align_corners]
    channels = [3 * case + c for case in half_pixel for c in range(3)]
    for scale in [(2.3, 3.0), (1.7, 2.5)]:
        feed = {'input': image, 'factor': np.array(scale, np.float32)}
        actual = matmul.run(feed)['output']
        assert np.abs(actual - plain.run(feed)['output']).max() <= 1e-6
        expected = _run(sessions[False][1], image, scale)
        assert actual.shape == expected.shape
        assert np.abs(actual[:, channels] - expected[:, channels]).max() <= ATOL


@pytest.mark.parametrize('opset', [11, 13])
def test_older_opsets_give_the_same_graph_result(tmp_path, opset):
    """Before opset 13 Unsqueeze takes attributes, before 12 Min/Max take no integers."""
    models = {}
    for matmul in (True, False):
        cfg = load_deploy_config('configs/srcnn_dynamic.py', {'onnx_config.opset_version': opset,
                                                              'onnx_config.matmul_resize': matmul})
        path = torch2onnx(AllModes().eval(), cfg, tmp_path / str(matmul))
        models[matmul] = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    rng = np.random.default_rng(3)
    for size, scale in CASES:
        image = rng.random((1, 3, *size), dtype=np.float32)
        actual, expected = (_run(models[matmul], image, scale) for matmul in (True, False))
        assert actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= ATOL


scales = st.floats(0.5, 4.0, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(height=st.integers(1, 40), width=st.integers(1, 40), scale_h=scales, scale_w=scales,
       seed=st.integers(0, 2**16))
def test_property_matmul_graph_equals_onnx_resize(sessions, height, width, scale_h, scale_w,
                                                  seed):
    assume(min(resized_length(height, scale_h), resized_length(width, scale_w)) >= 1)
    image = np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)
    actual = _run(sessions[True][1], image, (scale_h, scale_w))
    expected = _run(sessions[False][1], image, (scale_h, scale_w))
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= ATOL


@pytest.mark.openvino
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason='OpenVINO 2026.4 (CPU) reads non-constant Resize scales '
                          'only when an input shape changes')
def test_openvino_itself_keeps_the_old_factor_when_the_shapes_repeat(sessions):
    """A new factor that keeps every shape (x3 then x3.01 at 64 px) reuses the first one's
    weights in OpenVINO, in the matmul graph as in plain Resize. When this passes, OpenVINO
    has fixed it and the backend's workaround can go."""
    import openvino

    image = np.random.default_rng(4).random((1, 3, 64, 64), dtype=np.float32)
    compiled = openvino.Core().compile_model(str(sessions[True][2]), 'CPU',
                                             {'INFERENCE_PRECISION_HINT': 'f32'})
    request = compiled.create_infer_request()
    request.infer({'input': image, 'factor': np.array([3.0, 3.0], np.float32)})
    actual = request.infer({'input': image, 'factor': np.array([3.01, 3.01], np.float32)})
    expected = _run(sessions[True][1], image, (3.01, 3.01))
    assert np.abs(np.array(actual[compiled.outputs[0]]) - expected).max() <= ATOL


@pytest.mark.openvino
def test_the_openvino_backend_follows_a_new_factor_with_the_same_shapes(sessions):
    image = np.random.default_rng(4).random((1, 3, 64, 64), dtype=np.float32)
    openvino = build_backend({'type': 'openvino'}, sessions[True][2])
    for scale in (3.0, 3.01, 3.0, 2.99):
        actual = openvino.run({'input': image, 'factor': np.array([scale, scale], np.float32)})
        expected = _run(sessions[True][1], image, (scale, scale))
        assert np.abs(actual['output'] - expected).max() <= ATOL, scale
