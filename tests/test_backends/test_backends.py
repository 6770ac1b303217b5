"""Backend wrappers: one interface, the same numbers, clear errors, and no torch."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from support.models import scale_aware_srcnn

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.backends import BackendError, backend_class, backend_names, build_backend
from mmdeploy_srcnn.backends.base import first_line
from mmdeploy_srcnn.registry import BACKENDS

ENGINES = ['onnxruntime', 'openvino', 'reference']
ENGINE_PARAMS = [pytest.param(name, marks=pytest.mark.openvino) if name == 'openvino' else name
                 for name in ENGINES]


@pytest.fixture(scope='module', params=['torchscript', 'dynamo'])
def onnx_path(request, tmp_path_factory):
    options = ({} if request.param == 'torchscript'
               else {'onnx_config.exporter': 'dynamo', 'onnx_config.opset_version': 18})
    cfg = load_deploy_config('configs/srcnn_dynamic.py', options)
    return torch2onnx(scale_aware_srcnn(), cfg, tmp_path_factory.mktemp(request.param))


def _inputs(shape, scale):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    return {'input': image, 'factor': np.array(scale, dtype=np.float32)}


def test_registry_lists_all_engines():
    assert backend_names() == sorted(ENGINES)
    for name in ENGINES:
        assert backend_class(name) is BACKENDS.module_dict[name]


def test_engines_are_imported_only_when_asked_for():
    code = ('import sys\n'
            'from mmdeploy_srcnn.backends import build_backend, validate_backend_config\n'
            "validate_backend_config({'type': 'openvino', 'precision': 'f32'})\n"
            "validate_backend_config({'type': 'reference'})\n"
            "loaded = sorted(m for m in ('onnx', 'openvino', 'torch') if m in sys.modules)\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.openvino
@pytest.mark.parametrize('scale', [(2.0, 2.0), (2.5, 2.5), (2.0, 3.0)])
def test_engines_agree(onnx_path, scale):
    inputs = _inputs((1, 3, 12, 9), scale)
    outputs = {name: build_backend(dict(type=name), onnx_path).run(inputs)['output']
               for name in ENGINES}
    expected_shape = (1, 3, int(12 * scale[0]), int(9 * scale[1]))
    for name, output in outputs.items():
        assert output.shape == expected_shape, name
    assert np.abs(outputs['openvino'] - outputs['onnxruntime']).max() <= 1e-5
    assert np.abs(outputs['reference'] - outputs['onnxruntime']).max() <= 1e-5


@pytest.mark.parametrize('name', ENGINE_PARAMS)
def test_interface(onnx_path, name):
    backend = build_backend(dict(type=name), onnx_path)
    assert backend.input_names == ['input', 'factor']
    assert backend.output_names == ['output']
    assert backend.metadata['mmdeploy_srcnn.factor_format'] == 'hw'
    with pytest.raises(BackendError, match=r"missing: \['factor'\].*unknown: \['scale'\]"):
        backend.run({'input': np.zeros((1, 3, 4, 4), np.float32),
                     'scale': np.ones(2, np.float32)})


def test_unknown_type_lists_the_known_ones(onnx_path):
    with pytest.raises(BackendError, match="unknown backend type 'tensorrt' "
                                           r'\(known backends: onnxruntime, openvino, '
                                           r'reference\)'):
        build_backend(dict(type='tensorrt'), onnx_path)
    with pytest.raises(BackendError, match="backend_config has no 'type'"):
        build_backend({}, onnx_path)


@pytest.mark.parametrize('config, message', [
    (dict(type='onnxruntime', optimization_level='max'),
     "backend_config.optimization_level: must be one of disable, basic, extended, all, "
     "got 'max'"),
    (dict(type='onnxruntime', threads=0), 'threads: must be None or an int >= 1, got 0'),
    (dict(type='onnxruntime', threads=True), 'threads: must be None or an int >= 1'),
    (dict(type='onnxruntime', thread=2), "unknown option .*did you mean 'threads'"),
    (dict(type='openvino', performance_hint='FAST'), "performance_hint: .*got 'FAST'"),
    (dict(type='openvino', precision='f64'),
     r"precision: precision 'f64' is not supported on openvino \(supported: f32, bf16, f16, "
     r"int8, default\)"),
    (dict(type='onnxruntime', precision='bf16'),
     r"precision 'bf16' is not supported on onnxruntime \(supported: f32, int8\)"),
    (dict(type='openvino', threads=-1), 'threads: must be None or an int >= 1'),
    (dict(type='reference', max_input_pixels=0), 'max_input_pixels: must be an int >= 1'),
])
def test_bad_options(onnx_path, config, message):
    with pytest.raises(BackendError, match=message):
        build_backend(config, onnx_path)


@pytest.mark.parametrize('name', ENGINE_PARAMS)
def test_missing_and_corrupt_files(tmp_path, name):
    with pytest.raises(BackendError, match='ONNX model file not found'):
        build_backend(dict(type=name), tmp_path / 'missing.onnx')
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'\x08\x07garbage that is not a protobuf model')
    with pytest.raises(BackendError, match='broken.onnx: not a readable ONNX model'):
        build_backend(dict(type=name), broken)


def test_missing_openvino_package_names_the_extra(onnx_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)  # makes `import openvino` fail
    with pytest.raises(BackendError, match=r"pip install 'mmdeploy_srcnn\[openvino\]'"):
        build_backend(dict(type='openvino'), onnx_path)


def test_reference_refuses_large_inputs(onnx_path):
    backend = build_backend(dict(type='reference', max_input_pixels=100), onnx_path)
    small, large = _inputs((1, 3, 10, 10), (2, 2)), _inputs((1, 3, 10, 11), (2, 2))
    assert backend.accepts(small) and not backend.accepts(large)
    with pytest.raises(BackendError, match='only runs inputs up to 100 pixels'):
        backend.run(large)


@pytest.mark.openvino
def test_openvino_default_precision_is_f32(onnx_path):
    # OpenVINO picks bf16 on CPUs that have it: outputs would move by ~5e-3.
    inputs = _inputs((1, 3, 16, 16), (3, 3))
    default = build_backend(dict(type='openvino'), onnx_path).run(inputs)['output']
    reference = build_backend(dict(type='onnxruntime'), onnx_path).run(inputs)['output']
    assert np.abs(default - reference).max() <= 1e-5


@pytest.mark.parametrize('name', ENGINE_PARAMS)
def test_inputs_keep_their_onnx_names_when_fused(tmp_path, name):
    # OpenVINO fuses a no-op Cast into the input and gives the port the Cast's output name too;
    # its get_any_name() then returns '/Cast_output_0' (it sorts before 'factor').
    graph = helper.make_graph(
        [helper.make_node('Cast', ['factor'], ['/Cast_output_0'], to=TensorProto.FLOAT),
         helper.make_node('Mul', ['input', '/Cast_output_0'], ['output'])],
        'fused_names',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info('factor', TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [2])])
    path = tmp_path / 'fused.onnx'
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)]), path)
    backend = build_backend(dict(type=name), path)
    assert backend.input_names == ['input', 'factor'] and backend.output_names == ['output']
    out = backend.run({'input': np.array([1, 2], np.float32),
                       'factor': np.array([3, 4], np.float32)})
    np.testing.assert_array_equal(out['output'], [3, 8])


def test_backends_do_not_import_torch(onnx_path):
    code = ('import sys, numpy as np\n'
            'from mmdeploy_srcnn.backends import build_backend\n'
            f'for name in {ENGINES!r}:\n'
            f'    backend = build_backend(dict(type=name), {str(onnx_path)!r})\n'
            "    backend.run({'input': np.zeros((1, 3, 4, 4), np.float32),\n"
            "                 'factor': np.full(2, 2, np.float32)})\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize('name', ENGINE_PARAMS[:2])
def test_run_failures_become_backend_errors(onnx_path, name):
    backend = build_backend(dict(type=name), onnx_path)
    with pytest.raises(BackendError, match='failed to run the model'):
        backend.run({'input': np.zeros((1, 5, 4, 4), np.float32),  # 5 channels, model takes 3
                     'factor': np.full(2, 2, np.float32)})


def test_engine_messages_keep_what_went_wrong_not_where():
    message = ("Exception from src/inference/src/cpp/infer_request.cpp:224:\n"
               "Check 'getShape().isCompatible(dims)' failed at src/plugins/intel_cpu/src/"
               "memory_desc/cpu_memory_desc.h:99:\n"
               "ParameterMismatch: Can not clone with new dims.\n\n")
    assert first_line(RuntimeError(message)) == 'ParameterMismatch: Can not clone with new dims.'
    assert first_line(RuntimeError('x' * 1000)).endswith('...')
    assert len(first_line(RuntimeError('x' * 1000))) == 300
    assert first_line(RuntimeError('')) == 'RuntimeError'
