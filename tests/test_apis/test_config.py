"""Deploy config loading: _base_ inheritance, custom_imports, and errors that name the key."""
import sys
import textwrap
from pathlib import Path

import pytest

from mmdeploy_srcnn.apis.config import ConfigError, load_deploy_config, parse_cfg_options
from mmdeploy_srcnn.core import FUNCTION_REWRITER
from mmdeploy_srcnn.utils.scale import format_scale, parse_scale

CONFIG = 'configs/srcnn_dynamic.py'
ROOT = Path(__file__).resolve().parents[2]


def test_main_config_inherits_its_bases():
    cfg = load_deploy_config(CONFIG)
    assert cfg.onnx_config.exporter == 'torchscript'
    assert cfg.onnx_config.input_names == ['input', 'factor']
    assert cfg.onnx_config.dynamic_axes['output'] == {0: 'batch', 2: 'out_height',
                                                      3: 'out_width'}
    assert cfg.backend_config.type == 'onnxruntime'
    assert cfg.model.type == 'SRCNN'


@pytest.mark.parametrize('options, message', [
    ({'onnx_config.opset_version': 9},
     r'onnx_config.opset_version: .*11..20 for a dynamic Resize, got 9'),
    ({'onnx_config.opset_version': 21}, r'onnx_config.opset_version: .*got 21'),
    ({'onnx_config.opset_version': '17'}, r'onnx_config.opset_version: must be int, got str'),
    ({'onnx_config.exporter': 'jit'}, r'onnx_config.exporter: must be one of torchscript, '
                                      r"dynamo, got 'jit'"),
    ({'onnx_config.exporter': 'dynamo', 'onnx_config.opset_version': 13},
     r'the dynamo exporter supports opset 18\.\.'),
    ({'onnx_config.save_file': '../escape.onnx'}, r'onnx_config.save_file: must be a file '
                                                  r'name inside the work dir'),
    ({'onnx_config.save_file': '/tmp/abs.onnx'}, r'onnx_config.save_file'),
    ({'onnx_config.input_names': ['input']}, r'onnx_config.input_names: must be two different'),
    ({'onnx_config.input_names': ['x', 'x']}, r'onnx_config.input_names: must be two different'),
    ({'onnx_config.save_file': 'model.bin'}, r'onnx_config.save_file: must end with .onnx'),
    ({'onnx_config.matmul_resize': 1}, r'onnx_config.matmul_resize: must be bool'),
    ({'backend_config.threads': 0}, r'backend_config.threads: must be None or an int >= 1'),
    ({'backend_config.type': 'tensorrt'}, r"unknown backend type 'tensorrt'"),
    ({'verify.compare_backends': ['bogus']}, r"verify.compare_backends: unknown backend type"),
    ({'onnx_config.factor_format': 'chw'}, r'onnx_config.factor_format: must be one of hw, '
                                           r'nchw'),
    ({'onnx_config.dynamic_axes.image': {0: 'batch'}}, r"'image' is not an input or output"),
    ({'backend_config.type': 3}, r'backend_config.type: must be str'),
    ({'verify.scales': [2, -1]}, r'verify.scales: scale -1 must be finite and > 0'),
    ({'verify.scales': [float('nan')]}, r'verify.scales: .*finite and > 0'),
    ({'verify.scales': []}, r'verify.scales: must list at least one scale'),
    ({'verify.sizes': [(0, 4)]}, r'verify.sizes: each entry must be a \(height, width\)'),
    ({'verify.batch_sizes': [0]}, r'verify.batch_sizes: must list positive ints'),
    ({'verify.atol': -1.0}, r'verify.atol: must be a positive number'),
    ({'checkpoint': 5}, r'checkpoint: must be a path or None'),
])
def test_wrong_values_name_the_key(options, message):
    with pytest.raises(ConfigError, match=message):
        load_deploy_config(CONFIG, options)


@pytest.mark.parametrize('options, message', [
    ({'onnx_config.opset_verison': 13},
     r"onnx_config.opset_verison: unknown key \(known: .*\); did you mean "
     r"'onnx_config.opset_version'\?"),
    ({'verify.atoll': 1e-9}, r"verify.atoll: unknown key .*did you mean 'verify.atol'\?"),
    ({'backend_config.thread': 2}, r"backend_config.thread: unknown option of the "
                                   r"ONNXRuntimeBackend backend .*did you mean 'threads'\?"),
    ({'chekpoint': 'x.pth'}, r"chekpoint: unknown key .*did you mean 'checkpoint'\?"),
    ({'onnx_config.type': 'onnx'}, r'onnx_config.type: unknown key'),
])
def test_unknown_keys_are_errors_with_the_closest_known_one(options, message):
    with pytest.raises(ConfigError, match=message):
        load_deploy_config(CONFIG, options)


def test_private_helper_variables_are_allowed(tmp_path):
    config = tmp_path / 'helpers.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(Path(CONFIG).resolve())!r}]
        _scales = [2, 3]
        verify = dict(scales=_scales)
    '''))
    assert load_deploy_config(config).verify.scales == [2, 3]


def test_paths_in_the_shipped_config_work_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_deploy_config(ROOT / CONFIG)
    assert Path(cfg.checkpoint).is_file() and Path(cfg.demo_image).is_file()


@pytest.mark.parametrize('items, message', [
    (['garbage'], "'garbage' is not KEY=VALUE"),
    (['=3'], "'=3' is not KEY=VALUE"),
    (['verify..atol=1'], 'is not KEY=VALUE'),
    (['verify.sizes=[(8,8]'], 'Imbalanced brackets'),
    (['verify.precisions=dict(a=dict(atol=1),b=dict(atol=2))'], 'cannot read the value'),
])
def test_bad_cfg_options_are_one_line_errors(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_cfg_options(items)
    assert parse_cfg_options(['verify.sizes=[(8,8)]', 'verify.atol=1e-5']) == {
        'verify.sizes': [(8, 8)], 'verify.atol': 1e-5}


def test_config_that_raises_is_a_config_error(tmp_path):
    config = tmp_path / 'raising.py'
    config.write_text('raise RuntimeError("boom")\n')
    with pytest.raises(ConfigError, match='raising.py: cannot load config: RuntimeError: boom'):
        load_deploy_config(config)


def test_missing_key_is_named(tmp_path):
    config = tmp_path / 'partial.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(__import__('pathlib').Path(CONFIG).resolve())!r}]
        verify = dict(_delete_=True, scales=[2], sizes=[(8, 8)], batch_sizes=[1])
    '''))
    with pytest.raises(ConfigError, match=r'partial.py: verify.atol: missing \(required key\)'):
        load_deploy_config(config)


def test_missing_file_and_broken_python(tmp_path):
    with pytest.raises(ConfigError, match='nope.py: config file not found'):
        load_deploy_config(tmp_path / 'nope.py')
    broken = tmp_path / 'broken.py'
    broken.write_text('onnx_config = dict(\n')
    with pytest.raises(ConfigError, match='broken.py: cannot load config'):
        load_deploy_config(broken)


def test_custom_imports_register_user_rewriters(tmp_path, monkeypatch):
    (tmp_path / 'my_rewriters.py').write_text(textwrap.dedent('''
        from mmdeploy_srcnn.core import FUNCTION_REWRITER

        @FUNCTION_REWRITER.register_rewriter('torch.Tensor.repeat', backend='ncnn')
        def repeat__ncnn(self, *sizes):
            return FUNCTION_REWRITER.get_context().origin_func(self, *sizes)
    '''))
    config = tmp_path / 'with_imports.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(__import__('pathlib').Path(CONFIG).resolve())!r}]
        custom_imports = dict(imports=['my_rewriters'], allow_failed_imports=False)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        load_deploy_config(config)
        (record,) = [r for r in FUNCTION_REWRITER.records()
                     if r.rewriter.__module__ == 'my_rewriters']
        assert (record.func_name, record.backend) == ('torch.Tensor.repeat', 'ncnn')
    finally:
        FUNCTION_REWRITER.unregister_rewriter('torch.Tensor.repeat', backend='ncnn')
        sys.modules.pop('my_rewriters', None)


def test_custom_imports_come_from_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / 'cwd_rewriters.py').write_text('LOADED = True\n')
    config = tmp_path / 'cwd_imports.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(Path(CONFIG).resolve())!r}]
        custom_imports = dict(imports=['cwd_rewriters'])
    '''))
    monkeypatch.chdir(tmp_path)
    try:
        load_deploy_config(config)
        assert sys.modules['cwd_rewriters'].LOADED
        assert str(tmp_path) not in sys.path  # only while loading
    finally:
        sys.modules.pop('cwd_rewriters', None)


def test_custom_imports_of_a_missing_module_fail_loudly(tmp_path):
    config = tmp_path / 'bad_imports.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(__import__('pathlib').Path(CONFIG).resolve())!r}]
        custom_imports = dict(imports=['no_such_rewriters_module'])
    '''))
    with pytest.raises(ConfigError, match='no_such_rewriters_module'):
        load_deploy_config(config)


@pytest.mark.parametrize('value, expected', [
    (2, (2.0, 2.0)), (2.5, (2.5, 2.5)), ((2, 3), (2.0, 3.0)), ('2x3', (2.0, 3.0)),
    ('2.5', (2.5, 2.5)), ('2X3', (2.0, 3.0)),
])
def test_parse_scale(value, expected):
    assert parse_scale(value) == expected
    assert format_scale(value) == ('2x3' if expected == (2.0, 3.0) else f'{expected[0]:g}')


@pytest.mark.parametrize('value', ['abc', '2x', 'x3', '2x3x4', 0, -1, float('inf'), 'nan',
                                   True, (1, 2, 3), None])
def test_parse_scale_rejects(value):
    with pytest.raises(ValueError, match='scale'):
        parse_scale(value)
