"""The Triton model repository, checked against Triton's own ``ModelConfig`` schema.

``config.pbtxt`` is parsed with protobuf's text format into the ``ModelConfig`` message that
tritonclient ships (the schema the server parses with), and compared with the ``.onnx``
read independently here. The server itself is not run.
"""
import hashlib
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from onnx import TensorProto, helper, numpy_helper
from support.tools import load_tool

from mmdeploy_srcnn.serving import TritonRepositoryError, write_model_repository
from mmdeploy_srcnn.utils.model_meta import ModelConvention


def _model_config_module():
    """tritonclient's generated ``model_config_pb2``, loaded on its own: importing it through
    ``tritonclient.grpc`` would need grpcio, and only the message types are needed."""
    package = importlib.util.find_spec('tritonclient')
    path = Path(package.submodule_search_locations[0]) / 'grpc' / 'model_config_pb2.py'
    spec = importlib.util.spec_from_file_location('triton_model_config_pb2', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pb = _model_config_module()
triton_repo = load_tool('triton_repo')
ONNX_TO_TRITON = {TensorProto.FLOAT: pb.TYPE_FP32, TensorProto.FLOAT16: pb.TYPE_FP16}


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> Path:
    """SRCNN exported by the project's exporter (dynamic batch, height and width)."""
    import torch

    from mmdeploy_srcnn.apis.config import load_deploy_config
    from mmdeploy_srcnn.apis.export import torch2onnx
    from mmdeploy_srcnn.models import SRCNN

    torch.manual_seed(0)
    cfg = load_deploy_config('configs/srcnn_dynamic.py')
    return torch2onnx(SRCNN(), cfg, tmp_path_factory.mktemp('model'))


def resize_model(path: Path, convention: ModelConvention = ModelConvention(),
                 factor_shape=(2,), extra_input: bool = False) -> Path:
    """A bare cubic Resize by the factor input, under ``convention``'s names."""
    scales = 'scales'
    nodes = [helper.make_node('Concat', ['ones', convention.factor_input], [scales], axis=0),
             helper.make_node('Resize', [convention.image_input, '', scales],
                              [convention.output], mode='cubic')]
    inputs = [helper.make_tensor_value_info(convention.image_input, TensorProto.FLOAT,
                                            ['n', 3, 'h', 'w']),
              helper.make_tensor_value_info(convention.factor_input, TensorProto.FLOAT,
                                            list(factor_shape))]
    if extra_input:
        inputs.append(helper.make_tensor_value_info('extra', TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        nodes, 'resize', inputs,
        [helper.make_tensor_value_info(convention.output, TensorProto.FLOAT,
                                       ['n', 3, 'oh', 'ow'])],
        [numpy_helper.from_array(np.ones(2, np.float32), 'ones')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    helper.set_model_props(model, convention.to_metadata())
    onnx.save(model, str(path))
    return path


def parse_config(path: Path):
    return text_format.Parse(path.read_text(), pb.ModelConfig())


def onnx_io(path: Path):
    """(name, ONNX element type, dims with -1 for symbolic) of graph inputs and outputs."""
    model = onnx.load(str(path))

    def describe(values):
        return [(v.name, v.type.tensor_type.elem_type,
                 [d.dim_value if d.HasField('dim_value') else -1
                  for d in v.type.tensor_type.shape.dim]) for v in values]
    return describe(model.graph.input), describe(model.graph.output)


def config_io(config):
    def describe(tensors):
        return [(t.name, t.data_type, list(t.dims)) for t in tensors]
    return describe(config.input), describe(config.output)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_config_matches_the_onnx_in_names_dims_and_types(exported, tmp_path, backend, capsys):
    accept = ['--accept-openvino-factor-bug'] if backend == 'openvino' else []
    code = triton_repo.main([str(exported), '--out', str(tmp_path / 'repo'), '--name',
                             'srcnn_x', '--backend', backend, *accept])
    config_path = tmp_path / 'repo' / 'srcnn_x' / 'config.pbtxt'
    model_path = tmp_path / 'repo' / 'srcnn_x' / '1' / 'model.onnx'
    assert code == 0
    assert capsys.readouterr().out == f'wrote {config_path} and {model_path} ({backend} backend)\n'
    config = parse_config(config_path)
    inputs, outputs = onnx_io(exported)
    assert [name for name, _, _ in inputs] == ['input', 'factor']
    assert config_io(config) == (
        [(name, ONNX_TO_TRITON[dtype], dims) for name, dtype, dims in inputs],
        [(name, ONNX_TO_TRITON[dtype], dims) for name, dtype, dims in outputs])
    assert config_io(config)[0] == [('input', pb.TYPE_FP32, [-1, 3, -1, -1]),
                                    ('factor', pb.TYPE_FP32, [2])]
    assert config.name == 'srcnn_x'
    assert config.max_batch_size == 0  # full shapes in dims; see the batching test
    assert config.WhichOneof('scheduling_choice') is None  # no dynamic batcher
    assert [(g.kind, g.count) for g in config.instance_group] == \
        [(pb.ModelInstanceGroup.KIND_CPU, 1)]
    if backend == 'onnxruntime':
        assert (config.platform, config.backend) == ('onnxruntime_onnx', 'onnxruntime')
    else:
        assert (config.platform, config.backend, config.default_model_filename) == \
            ('', 'openvino', 'model.onnx')
        assert config_path.read_text().startswith('# OpenVINO 2026.4 reuses the previous factor')
    assert hashlib.sha256(model_path.read_bytes()).digest() == \
        hashlib.sha256(exported.read_bytes()).digest()
    assert sorted(p.name for p in (tmp_path / 'repo').rglob('*')) == \
        ['1', 'config.pbtxt', 'model.onnx', 'srcnn_x']  # no temporary file left


def test_batching_is_refused_with_the_input_that_prevents_it(exported, tmp_path):
    with pytest.raises(TritonRepositoryError) as error:
        write_model_repository(exported, tmp_path, max_batch_size=4)
    assert str(error.value) == (
        f"{exported}: Triton cannot batch requests of this model ('factor' has shape [2]: no "
        'batch dimension, one factor per model run); use max_batch_size 0, with which a '
        'request still carries N images of one size')
    assert list(tmp_path.iterdir()) == []


def test_the_convention_names_and_factor_layout_come_from_the_model(tmp_path):
    convention = ModelConvention(image_input='pixels "in"', factor_input='scale\\hw',
                                 output='up', factor_format='nchw')
    model = resize_model(tmp_path / 'm.onnx', convention, factor_shape=(4,))
    written = write_model_repository(model, tmp_path / 'repo', name='odd')
    config = parse_config(written['config'])
    assert config_io(config) == (
        [('pixels "in"', pb.TYPE_FP32, [-1, 3, -1, -1]), ('scale\\hw', pb.TYPE_FP32, [4])],
        [('up', pb.TYPE_FP32, [-1, 3, -1, -1])])


def test_existing_files_are_kept_unless_overwrite(exported, tmp_path):
    written = write_model_repository(exported, tmp_path)
    written['config'].write_text('mine')
    with pytest.raises(TritonRepositoryError, match=r'config.pbtxt: exists \(pass --overwrite'):
        write_model_repository(exported, tmp_path)
    assert written['config'].read_text() == 'mine'
    write_model_repository(exported, tmp_path, backend='openvino', overwrite=True,
                           accept_openvino_factor_bug=True)
    assert parse_config(written['config']).backend == 'openvino'


@pytest.mark.parametrize('name', ['../escape', '.hidden', 'a/b', '', '-x', 'x' * 129])
def test_names_that_are_not_one_folder_are_refused(exported, tmp_path, name):
    with pytest.raises(TritonRepositoryError, match='use 1-128 letters'):
        write_model_repository(exported, tmp_path / 'repo', name=name)
    assert not (tmp_path / 'repo').exists()


def test_a_link_out_of_the_repository_is_refused(exported, tmp_path):
    outside, repo = tmp_path / 'outside', tmp_path / 'repo'
    outside.mkdir()
    repo.mkdir()
    (repo / 'srcnn').symlink_to(outside)
    with pytest.raises(TritonRepositoryError, match='outside the repository'):
        write_model_repository(exported, repo)
    assert list(outside.iterdir()) == []


def test_models_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(TritonRepositoryError, match=r"not a dynamic-factor model: it takes "
                                                    r"\['input', 'factor', 'extra'\]"):
        write_model_repository(resize_model(tmp_path / 'e.onnx', extra_input=True),
                               tmp_path / 'repo')
    external = resize_model(tmp_path / 'x.onnx')
    proto = onnx.load(str(external))
    onnx.save(proto, str(external), save_as_external_data=True, all_tensors_to_one_file=True,
              location='x.data', size_threshold=0)
    with pytest.raises(TritonRepositoryError, match='keeps weights in external data files'):
        write_model_repository(external, tmp_path / 'repo')
    (tmp_path / 'junk.onnx').write_bytes(b'not onnx')
    with pytest.raises(TritonRepositoryError, match='not a readable ONNX model'):
        write_model_repository(tmp_path / 'junk.onnx', tmp_path / 'repo')
    assert not (tmp_path / 'repo').exists()


def test_tool_errors_are_one_line_with_exit_code_2(exported, tmp_path, capsys):
    a_file = tmp_path / 'file'
    a_file.write_text('mine')
    for args, start in [
            (['--max-batch-size', '2'], f'{exported}: Triton cannot batch requests of this model'),
            (['--backend', 'openvino'], "Triton's openvino backend runs OpenVINO as it is, and "
                                        'OpenVINO 2026.4 reuses the previous factor'),
            (['--out', str(a_file)], f'{a_file}: cannot be the repository folder')]:
        out = [] if '--out' in args else ['--out', str(tmp_path / 'repo')]
        assert triton_repo.main([str(exported), *out, *args]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f'triton_repo: error: {start}'), err
    assert a_file.read_text() == 'mine' and not (tmp_path / 'repo').exists()


def test_the_writer_never_imports_torch(exported, tmp_path):
    script = textwrap.dedent('''
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == 'torch' or name.startswith('torch.'):
                    raise ImportError(f'torch is blocked in this test ({name})')

        sys.meta_path.insert(0, NoTorch())
        from mmdeploy_srcnn.serving import write_model_repository
        write_model_repository(sys.argv[1], sys.argv[2])
    ''')
    result = subprocess.run([sys.executable, '-c', script, str(exported), str(tmp_path)],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2],
                            env=dict(os.environ, PYTHONPATH=''))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'srcnn' / '1' / 'model.onnx').is_file()
