"""tools/deploy.py: the main job end to end, its outputs, exit codes and error messages."""
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from support.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
SMALL_MATRIX = ['verify.sizes=[(12,10)]', 'verify.batch_sizes=[1,2]']


deploy = load_tool('deploy')


@pytest.mark.slow
def test_main_job_in_a_subprocess(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/deploy.py', 'configs/srcnn_dynamic.py', '--work-dir',
         str(tmp_path), '--cfg-options', *SMALL_MATRIX],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['passed'] is True
    labels = ['x2', 'x3', 'x4', 'x2.5', 'x2x3', 'x2.3']
    assert len(report['verification']) == len(labels) * 2
    assert all(row['max_abs_diff'] <= 1e-4 for row in report['verification'])
    assert sorted(p.name for p in (tmp_path / 'images').iterdir()) == sorted(
        f'demo_{label}.png' for label in labels)
    onnx.checker.check_model(onnx.load(str(tmp_path / 'end2end.onnx')), full_check=True)
    assert 'x2x3' in result.stdout and 'FAIL' not in result.stdout


def test_dynamo_config(tmp_path):
    code = deploy.main(['configs/srcnn_dynamic_dynamo.py', '--work-dir', str(tmp_path),
                        '--cfg-options', 'verify.sizes=[(9,11)]', 'verify.scales=[2.5,(2,3)]',
                        'onnx_config.matmul_resize=False'])
    assert code == 0
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['exporter'] == 'dynamo' and report['opset'] == 18
    # The shipped model is scale-aware: Reciprocal, MatMul, Reshape, Add give the hidden layers
    # their factor-dependent biases (the README quotes this list).
    assert report['nodes'] == ['Resize', 'Conv', 'Reciprocal', 'MatMul', 'Reshape', 'Add',
                               'Relu', 'Conv', 'MatMul', 'Reshape', 'Add', 'Relu', 'Conv', 'Add']


def test_mismatch_exits_1(tmp_path, capsys):
    code = deploy.main(['configs/srcnn_dynamic.py', '--work-dir', str(tmp_path),
                        '--cfg-options', 'verify.sizes=[(8,8)]', 'verify.scales=[3]',
                        'verify.batch_sizes=[1]', 'verify.atol=1e-12'])
    assert code == 1
    assert 'FAIL' in capsys.readouterr().out
    assert json.loads((tmp_path / 'report.json').read_text())['passed'] is False


@pytest.mark.parametrize('args, message', [
    (['configs/nope.py'], 'configs/nope.py: config file not found'),
    (['configs/srcnn_dynamic.py', '--cfg-options', 'onnx_config.opset_version=9'],
     'onnx_config.opset_version'),
    (['configs/srcnn_dynamic.py', '--img', 'missing.png'], 'missing.png: no such file'),
    (['configs/srcnn_dynamic.py', '--checkpoint', 'missing.pth'],
     'missing.pth: checkpoint file not found'),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert deploy.main([*args, '--work-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1 and 'Traceback' not in err
    assert not (tmp_path / 'end2end.onnx').exists()


def test_not_an_image_exits_2(tmp_path, capsys):
    bogus = tmp_path / 'bogus.png'
    bogus.write_text('not an image')
    code = deploy.main(['configs/srcnn_dynamic.py', '--img', str(bogus), '--work-dir',
                        str(tmp_path / 'out'), '--cfg-options', 'verify.sizes=[(8,8)]',
                        'verify.scales=[2]', 'verify.batch_sizes=[1]'])
    assert code == 2
    assert 'bogus.png' in capsys.readouterr().err


def test_help_explains_the_outputs():
    result = subprocess.run([sys.executable, 'tools/deploy.py', '--help'], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for word in ('--work-dir', '--cfg-options', 'end2end.onnx', 'report.json'):
        assert word in result.stdout


@pytest.mark.openvino
def test_openvino_config_compares_every_engine_and_precision(tmp_path, capsys):
    # 50 px at x2.3: 115 px; a factor rounded to bf16 (2.296875) would give 114.
    code = deploy.main(['configs/srcnn_dynamic_openvino.py', '--work-dir', str(tmp_path),
                        '--cfg-options', 'verify.sizes=[(50,30)]', 'verify.batch_sizes=[1]'])
    assert code == 0
    out = capsys.readouterr().out
    assert 'openvino' in out and 'reference' in out
    report = json.loads((tmp_path / 'report.json').read_text())
    rows = report['verification']
    by_precision = {p: [r for r in rows if r['precision'] == p]
                    for p in ('f32', 'default', 'bf16', 'f16', 'int8')}
    assert all(len(group) == 6 for group in by_precision.values())  # the six scales
    assert all(row['passed'] and row['torch_shape'] == row['backend_shape'] for row in rows)
    assert {tuple(r['backend_shape']) for r in by_precision['default'] if r['scale'][0] < 2.31
            and r['scale'][0] > 2.29} == {(1, 3, 115, 69)}
    assert (tmp_path / 'end2end_int8.onnx').is_file()
    assert max(r['max_abs_diff'] for r in by_precision['int8']) > 1e-3  # really int8
    assert report['backend'] == 'openvino'
    comparison = report['backend_comparison']
    assert comparison['engines'] == ['pytorch', 'openvino', 'onnxruntime', 'reference']
    assert comparison['passed'] and len(comparison['pairs']) == 6
    for pair in comparison['pairs']:
        assert pair['cases'] == 6 and pair['shape_mismatches'] == 0
        limit = 1e-4 if 'pytorch' in pair['engines'] else 1e-5
        assert pair['max_abs_diff'] <= limit, pair


@pytest.mark.openvino
def test_compare_backends_flag_selects_engines(tmp_path, capsys):
    code = deploy.main(['configs/srcnn_dynamic.py', '--work-dir', str(tmp_path),
                        '--compare-backends', 'openvino', '--cfg-options',
                        'verify.sizes=[(8,8)]', 'verify.scales=[2.5]', 'verify.batch_sizes=[1]'])
    assert code == 0
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['backend_comparison']['engines'] == ['pytorch', 'openvino']
