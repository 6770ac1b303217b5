"""Models are data: external data refused by default, and confined to the model's folder."""
import os

import numpy as np
import pytest
from support.hidden_external_data import HIDDEN, RUNNABLE, in_function
from support.onnx_models import external_data_model, scale_by_weight_model

from mmdeploy_srcnn.backends import BackendError, build_backend
from mmdeploy_srcnn.backends.model_file import inspect_model_file

ENGINES = ['onnxruntime', pytest.param('openvino', marks=pytest.mark.openvino), 'reference']
WEIGHTS = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
INPUTS = {'input': np.ones(4, np.float32), 'factor': np.ones(2, np.float32)}


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / 'models'
    folder.mkdir()
    (folder / 'weights.bin').write_bytes(WEIGHTS.tobytes())
    return folder


@pytest.mark.parametrize('name', ENGINES)
def test_external_data_is_refused_by_default(model_dir, name):
    secret = model_dir / 'id_rsa'
    secret.write_bytes(b'-----BEGIN KEY--')
    path = external_data_model(model_dir / 'model.onnx', 'id_rsa')
    with pytest.raises(BackendError, match=r"tensor 'weight' keeps its data in another file "
                                           r"\('id_rsa'\); external data is refused"):
        build_backend({'type': name}, path)


@pytest.mark.parametrize('name', ENGINES)
def test_allowed_external_data_inside_the_folder_runs(model_dir, name):
    path = external_data_model(model_dir / 'model.onnx', 'weights.bin')
    backend = build_backend({'type': name, 'allow_external_data': True}, path)
    np.testing.assert_array_equal(backend.run(INPUTS)['output'], WEIGHTS)


@pytest.mark.parametrize('location, message', [
    ('../outside.bin', 'only files inside the model folder'),
    ('/etc/hostname', 'only files inside the model folder'),
    ('link.bin', 'goes through a symbolic link'),
    ('sub', 'is not a regular file'),
    ('missing.bin', 'is not a regular file'),
])
def test_allowed_external_data_must_stay_in_the_folder(model_dir, location, message):
    (model_dir.parent / 'outside.bin').write_bytes(WEIGHTS.tobytes())
    os.symlink(model_dir.parent / 'outside.bin', model_dir / 'link.bin')
    (model_dir / 'sub').mkdir()
    path = external_data_model(model_dir / 'model.onnx', location)
    with pytest.raises(BackendError, match=message):
        build_backend({'type': 'onnxruntime', 'allow_external_data': True}, path)


def test_plain_models_are_not_affected(tmp_path):
    path = scale_by_weight_model(tmp_path / 'model.onnx', WEIGHTS)
    np.testing.assert_array_equal(build_backend({'type': 'onnxruntime'}, path).run(INPUTS)[
        'output'], WEIGHTS)


# ---- external data elsewhere than in the graph's initializers -------------------------------

@pytest.mark.parametrize('build', HIDDEN.values(), ids=list(HIDDEN))
def test_external_data_anywhere_in_the_model_is_refused(model_dir, build):
    (model_dir / 'id_rsa').write_bytes(b'-----BEGIN KEY--')
    path = build(model_dir / 'model.onnx', 'id_rsa')
    with pytest.raises(BackendError, match=r"tensor '\w+'( in function 'local\.Weight')? keeps "
                                           r"its data in another file \('id_rsa'\); external "
                                           r"data is refused unless allowed"):
        inspect_model_file(path, allow_external_data=False)


def test_the_message_names_the_function(model_dir):
    path = in_function(model_dir / 'model.onnx', 'weights.bin')
    with pytest.raises(BackendError, match="tensor 'weight' in function 'local.Weight' keeps"):
        inspect_model_file(path, allow_external_data=False)


@pytest.mark.parametrize('name', ENGINES)
@pytest.mark.parametrize('build', RUNNABLE.values(), ids=list(RUNNABLE))
def test_hidden_external_data_is_refused_by_every_engine(model_dir, build, name):
    path = build(model_dir / 'model.onnx', 'weights.bin')
    with pytest.raises(BackendError, match='external data is refused unless allowed'):
        build_backend({'type': name}, path)


@pytest.mark.parametrize('build', RUNNABLE.values(), ids=list(RUNNABLE))
def test_hidden_external_data_is_read_when_allowed(model_dir, build):
    """The engine does read these tensors from the file: what the refusal above guards."""
    path = build(model_dir / 'model.onnx', 'weights.bin')
    backend = build_backend({'type': 'onnxruntime', 'allow_external_data': True}, path)
    np.testing.assert_array_equal(backend.run(INPUTS)['output'], WEIGHTS)


@pytest.mark.parametrize('location, message', [
    ('../outside.bin', 'only files inside the model folder'),
    ('link.bin', 'goes through a symbolic link'),
    ('missing.bin', 'is not a regular file'),
])
@pytest.mark.parametrize('build', HIDDEN.values(), ids=list(HIDDEN))
def test_hidden_allowed_external_data_must_stay_in_the_folder(model_dir, build, location,
                                                              message):
    (model_dir.parent / 'outside.bin').write_bytes(WEIGHTS.tobytes())
    os.symlink(model_dir.parent / 'outside.bin', model_dir / 'link.bin')
    path = build(model_dir / 'model.onnx', location)
    with pytest.raises(BackendError, match=message):
        inspect_model_file(path, allow_external_data=True)
