"""int8 quantization of the shipped model: only the convolutions change, both engines run the
file, the output stays close to float, and bad requests are refused before anything is written.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.datasets.protocol import make_lr
from mmdeploy_srcnn.models import load_checkpoint
from mmdeploy_srcnn.quantization import (CALIBRATION_KEY, METHODS, CalibrationSet,
                                         QuantizationError, builtin_calibration_set, conv_names,
                                         make_calibration_set, model_inputs, quantize_int8)
from mmdeploy_srcnn.registry import MODELS
from mmdeploy_srcnn.utils.metrics import psnr
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.precision import FLOAT_MODEL_SHA256_KEY, PRECISION_KEY

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / 'checkpoints' / 'srcnn_multiscale.pth'
_QDQ = ('QuantizeLinear', 'DequantizeLinear')
# int8 output against float output, on [0, 1] images, 48 x 48 LR at x2 / x2.5 / x3 (measured
# on both engines: max |diff| at most 0.012, PSNR at least 55 dB; limits leave a margin).
MAX_ABS_DIFF = 0.03
MIN_PSNR_DB = 50.0
# ONNX Runtime and OpenVINO on the same int8 file: both compute the same integer products;
# they differ in float rounding and in rounding the requantized input (measured 2.1e-3).
CROSS_ENGINE_ATOL = 1e-2


@pytest.fixture(scope='module', params=['matmul', 'resize'])
def fp32_onnx(request, tmp_path_factory) -> Path:
    """The shipped checkpoint exported in one of the two graph forms of the resize."""
    cfg = load_deploy_config('configs/srcnn_dynamic.py',
                             {'onnx_config.matmul_resize': request.param == 'matmul'})
    model = MODELS.build(cfg.model)
    load_checkpoint(model, CHECKPOINT)
    return torch2onnx(model.eval(), cfg, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope='module')
def calibration() -> CalibrationSet:
    return builtin_calibration_set(ModelConvention(), patch=64, patches_per_image=1)


@pytest.fixture(scope='module')
def int8_onnx(fp32_onnx, calibration) -> Path:
    return quantize_int8(fp32_onnx, fp32_onnx.with_name('end2end_int8.onnx'), calibration)


def lr_image(scale: float) -> np.ndarray:
    """A 48 x 48-ish LR crop of a photo-like image (scikit-image's coffee)."""
    from skimage import data

    hr = data.coffee()[100:100 + 120, 200:200 + 120]
    return make_lr(hr, scale)[1]


def run(engine: str, path: Path, scale: float) -> np.ndarray:
    inputs = model_inputs(lr_image(scale), scale, ModelConvention())
    return build_backend({'type': engine}, path).run(inputs)['output']


def test_only_the_convolutions_change(fp32_onnx, int8_onnx):
    """Every other node reads exactly what it read in the float model (the resize, the
    factor-dependent biases and the global residual stay float), and every Conv input
    (activation, weight, bias) comes from a DequantizeLinear that feeds only Convs."""
    fp32, int8 = onnx.load(str(fp32_onnx)), onnx.load(str(int8_onnx))
    int8_nodes = {node.name: node for node in int8.graph.node}
    for node in fp32.graph.node:
        if node.op_type != 'Conv':
            assert list(int8_nodes[node.name].input) == list(node.input), node.name
    made_by = {out: node for node in int8.graph.node for out in node.output}
    for name in conv_names(int8):
        assert [made_by[i].op_type for i in int8_nodes[name].input] == ['DequantizeLinear'] * 3
    convs_inputs = {i for name in conv_names(int8) for i in int8_nodes[name].input}
    dequantized = {node.output[0] for node in int8.graph.node
                   if node.op_type == 'DequantizeLinear'}
    consumers = {i for node in int8.graph.node if node.op_type not in _QDQ for i in node.input}
    assert dequantized & consumers == convs_inputs
    # per Conv: a Q/DQ pair on the activation, a DQ each for the weight and the int32 bias
    assert len(int8.graph.node) == len(fp32.graph.node) + 3 * 4
    onnx.checker.check_model(int8, full_check=True)


def test_metadata_is_kept_and_says_int8(fp32_onnx, int8_onnx):
    source = {p.key: p.value for p in onnx.load(str(fp32_onnx)).metadata_props}
    result = {p.key: p.value for p in onnx.load(str(int8_onnx)).metadata_props}
    assert {key: result[key] for key in source} == source
    assert result[PRECISION_KEY] == 'int8'
    assert result[FLOAT_MODEL_SHA256_KEY] == hashlib.sha256(fp32_onnx.read_bytes()).hexdigest()
    record = json.loads(result[CALIBRATION_KEY])
    assert record['method'] == 'minmax' and record['format'] == 'QDQ'
    assert record['data']['images'] == 'builtin:train'
    assert record['data']['samples'] == 11 * 6
    assert record['quantized_nodes'] == conv_names(onnx.load(str(fp32_onnx)))
    assert ModelConvention.from_metadata(result) == ModelConvention.from_metadata(source)


@pytest.mark.parametrize('engine', ['onnxruntime',
                                    pytest.param('openvino', marks=pytest.mark.openvino)])
@pytest.mark.parametrize('scale', [2.0, 2.5, 3.0])
def test_int8_runs_close_to_float(fp32_onnx, int8_onnx, engine, scale):
    reference = run('onnxruntime', fp32_onnx, scale)
    output = run(engine, int8_onnx, scale)
    assert output.shape == reference.shape
    assert np.abs(output - reference).max() <= MAX_ABS_DIFF
    assert psnr(output[0] * 255, reference[0] * 255) >= MIN_PSNR_DB
    # int8 noise, not a bit-exact copy of the float model: the test would pass vacuously
    assert np.abs(output - reference).max() > 1e-4


@pytest.mark.openvino
def test_engines_agree_on_the_int8_file(int8_onnx):
    np.testing.assert_allclose(run('openvino', int8_onnx, 3.0),
                               run('onnxruntime', int8_onnx, 3.0), atol=CROSS_ENGINE_ATOL)


def test_the_app_runs_the_int8_file_only_as_its_float_model_is_fed(fp32_onnx, int8_onnx,
                                                                   tmp_path):
    from mmdeploy_srcnn.app import Upscaler
    from mmdeploy_srcnn.backends import BackendError

    float_path, int8_path = tmp_path / 'end2end.onnx', tmp_path / 'end2end_int8.onnx'
    float_path.write_bytes(fp32_onnx.read_bytes())
    proto = onnx.load(str(int8_onnx))
    assert Upscaler(fp32_onnx, precision='int8').precision == 'int8'  # as quantized: runs
    for prop in proto.metadata_props:  # its hash still matches the float file: only the
        if prop.key == 'mmdeploy_srcnn.halo':  # convention tells the edit
            prop.value = '0'
    onnx.save(proto, str(int8_path))
    with pytest.raises(BackendError, match=r"end2end_int8.onnx: not fed as end2end.onnx is "
                                           r"\(halo 0 there, 6 here\)"):
        Upscaler(float_path, precision='int8')


def test_float_convs_stay_float(fp32_onnx, calibration, tmp_path):
    last = conv_names(onnx.load(str(fp32_onnx)))[-1]
    path = quantize_int8(fp32_onnx, tmp_path / 'int8.onnx', calibration, float_convs=[last])
    model = onnx.load(str(path))
    made_by = {out: node.op_type for node in model.graph.node for out in node.output}
    conv = next(node for node in model.graph.node if node.name == last)
    initializers = {tensor.name for tensor in model.graph.initializer}
    assert all(name in initializers or made_by[name] not in _QDQ for name in conv.input)
    assert json.loads({p.key: p.value for p in model.metadata_props}[CALIBRATION_KEY])[
        'float_convs'] == [last]


def test_quantized_conv_outputs_feed_int8_to_the_next_node(fp32_onnx, calibration, tmp_path):
    path = quantize_int8(fp32_onnx, tmp_path / 'int8.onnx', calibration,
                         quantize_conv_outputs=True)
    model = onnx.load(str(path))
    made_by = {out: node for node in model.graph.node for out in node.output}
    read_by = {}
    for node in model.graph.node:
        for name in node.input:
            read_by.setdefault(name, []).append(node)
    for name in conv_names(model):
        conv = next(node for node in model.graph.node if node.name == name)
        assert [node.op_type for node in read_by[conv.output[0]]] == ['QuantizeLinear']
    # the residual still adds the float resize output, not an int8 copy of it
    residual = made_by[model.graph.output[0].name]  # Add(conv3 output, upsampled image)
    assert made_by[residual.input[0]].op_type == 'DequantizeLinear'
    assert made_by[residual.input[1]].op_type not in _QDQ


@pytest.mark.parametrize('method', sorted(METHODS))
def test_every_method_gives_a_valid_model(fp32_onnx, calibration, method, tmp_path):
    few = CalibrationSet(calibration.inputs[:12], calibration.description)
    path = quantize_int8(fp32_onnx, tmp_path / f'{method}.onnx', few, method=method)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert run('onnxruntime', path, 2.0).shape == run('onnxruntime', fp32_onnx, 2.0).shape


def bad_calibration(defect: str) -> CalibrationSet:
    """One sample with renamed inputs, or with a float64 image the model cannot take."""
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    good = make_calibration_set({'x': image}, ModelConvention(), 'synthetic', scales=[2.0],
                                patch=32, patches_per_image=1)
    pixels, factor = good.inputs[0]['input'], good.inputs[0]['factor']
    sample = ({'image': pixels, 'factor': factor} if defect == 'names'
              else {'input': pixels.astype(np.float64), 'factor': factor})
    return CalibrationSet((sample,), good.description)


@pytest.mark.parametrize('kwargs, message', [
    (dict(method='kl'), "unknown calibration method 'kl' (choose from minmax, entropy"),
    (dict(float_convs=['/conv9/Conv']), "float_convs ['/conv9/Conv'] are not Conv nodes"),
    (dict(float_convs=['/conv1/Conv', '/conv2/Conv', '/conv3/Conv']),
     'no Conv node left to quantize'),
    (dict(calibration=bad_calibration('names')),
     "calibration sample 0 has inputs ['factor', 'image'], the model takes ['factor', 'input']"),
    (dict(calibration=bad_calibration('dtype')), 'end2end.onnx: quantization failed: '),
])
def test_bad_requests_are_refused_and_write_nothing(fp32_onnx, calibration, kwargs, message,
                                                    tmp_path):
    out = tmp_path / 'end2end_int8.onnx'
    out.write_bytes(b'previous')
    kwargs.setdefault('calibration', calibration)
    with pytest.raises(QuantizationError) as info:
        quantize_int8(fp32_onnx, out, **kwargs)
    assert message in str(info.value)
    assert out.read_bytes() == b'previous'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['end2end_int8.onnx']


def test_an_int8_model_is_not_quantized_again(int8_onnx, calibration, tmp_path):
    with pytest.raises(QuantizationError, match="already quantized .metadata precision 'int8'"):
        quantize_int8(int8_onnx, tmp_path / 'again.onnx', calibration)


def test_unnamed_convs_are_refused(fp32_onnx, calibration, tmp_path):
    model = onnx.load(str(fp32_onnx))
    for node in model.graph.node:
        node.name = ''
    onnx.save(model, str(tmp_path / 'unnamed.onnx'))
    with pytest.raises(QuantizationError, match='unnamed Conv nodes'):
        quantize_int8(tmp_path / 'unnamed.onnx', tmp_path / 'out.onnx', calibration)


def test_package_is_torch_free():
    code = ('import sys, mmdeploy_srcnn.quantization; '
            'sys.exit(1 if "torch" in sys.modules else 0)')
    assert subprocess.run([sys.executable, '-c', code], cwd=ROOT).returncode == 0
