"""torch2onnx: one .onnx whose upscale factor is a graph input, checked, annotated, atomic."""
import importlib.util
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from support.models import run_backend, run_torch, scale_aware_srcnn

from mmdeploy_srcnn.apis.config import ConfigError, load_deploy_config
from mmdeploy_srcnn.apis.export import ExportError, torch2onnx
from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.models import SRCNN
from mmdeploy_srcnn.utils.model_meta import ModelConvention

CONFIG = 'configs/srcnn_dynamic.py'
# The plain Resize graph (the matmul resize has its own tests in tests/test_ops).
EXPORTERS = {'torchscript': {'onnx_config.matmul_resize': False},
             'dynamo': {'onnx_config.exporter': 'dynamo', 'onnx_config.opset_version': 18,
                        'onnx_config.matmul_resize': False}}


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.fixture(scope='module', params=list(EXPORTERS))
def deploy_cfg(request):
    return load_deploy_config(CONFIG, EXPORTERS[request.param])


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return SRCNN(residual=True).eval()


@pytest.fixture(scope='module')
def exported(tmp_path_factory, deploy_cfg, model):
    return torch2onnx(model, deploy_cfg, tmp_path_factory.mktemp('export'))


def test_graph_is_resize_then_convs_with_dynamic_axes(exported, deploy_cfg):
    proto = onnx.load(str(exported))
    ops = [node.op_type for node in proto.graph.node]
    network = ['Resize', 'Conv', 'Relu', 'Conv', 'Relu', 'Conv', 'Add']
    if deploy_cfg.onnx_config.opset_version >= 18:
        # Resize takes the [scale_h, scale_w] factor as it is (axes attribute): no Concat.
        assert [op for op in ops if op != 'Constant'] == network
    else:  # [1, 1] ++ factor
        assert [op for op in ops if op not in ('Constant', 'Concat')] == network
        assert ops.count('Concat') == 1
    assert proto.opset_import[0].version == deploy_cfg.onnx_config.opset_version
    inputs = {value.name: _dims(value) for value in proto.graph.input}
    assert inputs == {'input': ['batch', 3, 'height', 'width'], 'factor': [2]}
    (output,) = proto.graph.output
    assert output.name == 'output'
    assert _dims(output) == ['batch', 3, 'out_height', 'out_width']
    resize = next(node for node in proto.graph.node if node.op_type == 'Resize')
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize.attribute}
    assert attrs['mode'] == b'cubic' and attrs['cubic_coeff_a'] == pytest.approx(-0.75)


def test_metadata_describes_the_model(exported, deploy_cfg):
    metadata = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert ModelConvention.from_metadata(metadata) == ModelConvention()
    assert metadata['mmdeploy_srcnn.model_name'] == 'SRCNN'
    assert metadata['mmdeploy_srcnn.exporter'] == deploy_cfg.onnx_config.exporter


@pytest.mark.parametrize('scale', [(2.0, 2.0), (3.0, 3.0), (2.5, 2.5), (2.0, 3.0), (4.0, 1.5)])
@pytest.mark.parametrize('shape', [(1, 3, 16, 16), (2, 3, 21, 13)])
def test_one_file_runs_every_factor_and_matches_pytorch(exported, deploy_cfg, model, scale,
                                                        shape):
    backend = build_backend(deploy_cfg.backend_config, exported)
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    expected = run_torch(model, image, scale, deploy_cfg)
    actual = run_backend(backend, image, scale)
    assert actual.shape == expected.shape == (shape[0], 3, int(shape[2] * scale[0]),
                                              int(shape[3] * scale[1]))
    assert np.abs(actual - expected).max() <= 1e-4


@pytest.mark.parametrize('factor_format', ['hw', 'nchw'])
@pytest.mark.parametrize('exporter', list(EXPORTERS))
def test_scale_aware_model_reads_the_factor_in_the_graph(tmp_path, exporter, factor_format):
    aware = scale_aware_srcnn()
    cfg = load_deploy_config(CONFIG, {**EXPORTERS[exporter],
                                      'onnx_config.factor_format': factor_format})
    backend = build_backend(cfg.backend_config, torch2onnx(aware, cfg, tmp_path))
    image = np.random.default_rng(4).random((1, 3, 12, 10), dtype=np.float32)
    outputs = {}
    for scale in [(2.0, 2.0), (4.0, 4.0), (3.0, 2.5)]:
        expected = run_torch(aware, image, scale, cfg)
        outputs[scale] = run_backend(backend, image, scale)
        assert np.abs(outputs[scale] - expected).max() <= 1e-4
    # Same pixels, different factor: the hidden biases (not only the resize) changed.
    blind = SRCNN(residual=True).eval()
    blind.load_state_dict(aware.state_dict(), strict=False)
    expected_blind = run_torch(blind, image, (2.0, 2.0), cfg)
    assert np.abs(outputs[(2.0, 2.0)] - expected_blind).max() > 1e-2


def test_export_restores_interpolate(exported):
    assert F.interpolate is torch.nn.functional.__dict__['interpolate']
    assert getattr(F.interpolate, '__wrapped__', None) is None


@pytest.mark.parametrize('exporter, opset', [('torchscript', 11), ('dynamo', 20)])
def test_nchw_factor_format(tmp_path, model, exporter, opset):
    cfg = load_deploy_config(CONFIG, {'onnx_config.factor_format': 'nchw',
                                      'onnx_config.exporter': exporter,
                                      'onnx_config.opset_version': opset})
    path = torch2onnx(model, cfg, tmp_path)
    proto = onnx.load(str(path))
    assert {v.name: _dims(v) for v in proto.graph.input}['factor'] == [4]
    assert proto.opset_import[0].version == opset
    backend = build_backend(cfg.backend_config, path)
    image = np.random.default_rng(2).random((1, 3, 10, 12), dtype=np.float32)
    factor = ModelConvention.from_onnx(path).factor_array((3.0, 2.0))
    assert factor.tolist() == [1.0, 1.0, 3.0, 2.0]
    out = backend.run({'input': image, 'factor': factor})['output']
    assert out.shape == (1, 3, 30, 24)
    expected = run_torch(model, image, (3.0, 2.0), cfg)
    assert np.abs(out - expected).max() <= 1e-4


def test_model_module_with_imported_interpolate_exports_dynamic(tmp_path, deploy_cfg):
    source = tmp_path / 'alias_model.py'
    source.write_text(textwrap.dedent('''
        import torch
        from torch.nn.functional import interpolate

        class AliasNet(torch.nn.Module):
            color_order = 'RGB'
            value_range = (0.0, 1.0)
            receptive_radius = 1
            input_receptive_radius = 1

            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

            def forward(self, x, factor):
                return self.conv(interpolate(x, scale_factor=factor, mode='bicubic',
                                             align_corners=False))
    '''))
    spec = importlib.util.spec_from_file_location('alias_model_for_export', source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        net = module.AliasNet().eval()
        path = torch2onnx(net, deploy_cfg, tmp_path)
        assert module.interpolate is F.interpolate  # restored after export
        backend = build_backend(deploy_cfg.backend_config, path)
        image = np.random.default_rng(3).random((1, 3, 8, 8), dtype=np.float32)
        for scale in [(2.0, 2.0), (3.0, 2.5)]:
            out = run_backend(backend, image, scale)
            expected = run_torch(net, image, scale, deploy_cfg)
            assert out.shape == expected.shape == (1, 3, 8 * scale[0], int(8 * scale[1]))
            assert np.abs(out - expected).max() <= 1e-4
    finally:
        del sys.modules[spec.name]


def test_opset_below_11_is_a_config_error_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match=r'onnx_config.opset_version: .*11..20.*got 9'):
        load_deploy_config(CONFIG, {'onnx_config.opset_version': 9})
    assert list(tmp_path.iterdir()) == []


def test_failed_export_keeps_the_previous_file(tmp_path, deploy_cfg, exported):
    target = tmp_path / deploy_cfg.onnx_config.save_file
    target.write_bytes(exported.read_bytes())
    before = target.read_bytes()

    class Broken(torch.nn.Module):
        color_order, value_range, receptive_radius, input_receptive_radius = 'RGB', (0, 1), 0, 0

        def forward(self, x, factor):
            raise RuntimeError('boom inside forward')

    with pytest.raises(ExportError, match=f'{deploy_cfg.onnx_config.exporter} export failed: '
                                          'RuntimeError: boom inside forward'):
        torch2onnx(Broken(), deploy_cfg, tmp_path)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_both_exporters_agree(tmp_path, model):
    backends = {}
    for exporter, options in EXPORTERS.items():
        cfg = load_deploy_config(CONFIG, options)
        backends[exporter] = (cfg, build_backend(cfg.backend_config,
                                                 torch2onnx(model, cfg, tmp_path / exporter)))
    image = np.random.default_rng(4).random((2, 3, 19, 23), dtype=np.float32)
    for scale in [(2.0, 2.0), (2.5, 2.5), (2.0, 3.0), (2.3, 2.3)]:
        outputs = [run_backend(backend, image, scale) for cfg, backend in backends.values()]
        assert outputs[0].shape == outputs[1].shape
        assert np.abs(outputs[0] - outputs[1]).max() <= 1e-5


def test_dynamo_rejects_opsets_it_would_silently_change():
    with pytest.raises(ConfigError, match='the dynamo exporter supports opset 18'):
        load_deploy_config(CONFIG, {'onnx_config.exporter': 'dynamo',
                                    'onnx_config.opset_version': 13})


def test_two_threads_exporting_at_once_are_serialised(tmp_path, model, monkeypatch):
    import threading
    import time

    from mmdeploy_srcnn.apis import export as export_module

    events = []
    real = dict(export_module._EXPORTERS)

    def recording(name):
        def run(*args):
            events.append(('start', name))
            time.sleep(0.2)  # widen the window in which an unserialised export would interleave
            real[name](*args)
            events.append(('end', name))
        return run

    monkeypatch.setattr(export_module, '_EXPORTERS',
                        {name: recording(name) for name in real})
    results, errors = {}, []

    def worker(exporter):
        try:
            cfg = load_deploy_config(CONFIG, EXPORTERS[exporter])
            results[exporter] = (cfg, torch2onnx(model, cfg, tmp_path / exporter))
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(name,)) for name in EXPORTERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert [kind for kind, _ in events] == ['start', 'end', 'start', 'end']
    assert events[0][1] == events[1][1] and events[2][1] == events[3][1]
    image = np.random.default_rng(5).random((1, 3, 11, 13), dtype=np.float32)
    for cfg, path in results.values():
        out = run_backend(build_backend(cfg.backend_config, path), image, (2.5, 2.5))
        expected = run_torch(model, image, (2.5, 2.5), cfg)
        assert out.shape == expected.shape and np.abs(out - expected).max() <= 1e-4
    assert F.interpolate is torch.nn.functional.__dict__['interpolate']


def test_metadata_carries_the_tiling_halo(tmp_path, deploy_cfg):
    model = SRCNN(kernel_sizes=(9, 1, 7)).eval()
    assert model.receptive_radius == 4 + 0 + 3
    metadata = {p.key: p.value
                for p in onnx.load(str(torch2onnx(model, deploy_cfg, tmp_path))).metadata_props}
    assert ModelConvention.from_metadata(metadata).halo == 7


def test_model_without_receptive_radius_gets_a_warning(tmp_path, deploy_cfg):
    class Bare(torch.nn.Module):
        def forward(self, x, factor):
            return F.interpolate(x, scale_factor=factor, mode='bicubic')

    with pytest.warns(UserWarning, match=r"Bare does not declare color_order, value_range, "
                                         r"receptive_radius, input_receptive_radius: the "
                                         r"metadata says color_order='RGB', .*receptive_radius=6"):
        torch2onnx(Bare(), deploy_cfg, tmp_path)
