"""A corpus of broken inputs for tools/deploy.py: each gets a one-line error and exit code 2,
and nothing is written."""
import pickle
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from support.tools import load_tool

from mmdeploy_srcnn.models import SRCNN

ROOT = Path(__file__).resolve().parents[2]
BASE = str(ROOT / 'configs' / 'srcnn_dynamic.py')
SMALL = ['--cfg-options', 'verify.sizes=[(8,8)]', 'verify.scales=[2]', 'verify.batch_sizes=[1]']

deploy = load_tool('deploy')


class _RunsCode:
    def __reduce__(self):
        return (Path.touch, (Path('/tmp/mmdeploy_srcnn_pwned'),))


def _config(tmp_path, body):
    path = tmp_path / 'broken.py'
    path.write_text(textwrap.dedent(body).format(base=BASE))
    return ['--work-dir', str(tmp_path / 'out'), str(path)]


def _checkpoint(tmp_path, make):
    path = tmp_path / 'bad.pth'
    make(path)
    return ['--work-dir', str(tmp_path / 'out'), BASE, '--checkpoint', str(path)]


def _wrong_keys(path):
    torch.save({'state_dict': {'conv9.weight': torch.zeros(1)}}, path)


def _wrong_shapes(path):
    state = SRCNN(kernel_sizes=(9, 1, 3)).state_dict()
    torch.save({'state_dict': state}, path)


def _pickle_code(path):
    with open(path, 'wb') as file:
        pickle.dump({'state_dict': _RunsCode()}, file, protocol=2)


CONFIGS = {
    'missing onnx_config': ("_base_ = ['{base}']\nonnx_config = dict(_delete_=True)\n",
                            'onnx_config.exporter: missing'),
    'missing verify key': ("_base_ = ['{base}']\nverify = dict(_delete_=True, scales=[2])\n",
                           'verify.atol: missing'),
    'wrong type': ("_base_ = ['{base}']\nonnx_config = dict(input_names='input')\n",
                   'onnx_config.input_names: must be list or tuple'),
    'unknown backend': ("_base_ = ['{base}']\nbackend_config = dict(type='tensorrt')\n",
                        "unknown backend type 'tensorrt' (known backends: onnxruntime, "
                        'openvino, reference)'),
    'misspelt backend option': ("_base_ = ['{base}']\nbackend_config = dict(thread=2)\n",
                                "backend_config.thread: unknown option of the "
                                "ONNXRuntimeBackend backend"),
    'misspelt key': ("_base_ = ['{base}']\nverify = dict(atoll=1e-9)\n",
                     "verify.atoll: unknown key"),
    'bad model setting': ("_base_ = ['{base}']\nmodel = dict(channels='abc')\n",
                          'model: cannot build SRCNN with'),
    'unknown model setting': ("_base_ = ['{base}']\nmodel = dict(depth=3)\n",
                              "unexpected keyword argument 'depth'"),
    'config raises': ("raise RuntimeError('no')\n", 'cannot load config: RuntimeError: no'),
    'save_file not onnx': ("_base_ = ['{base}']\nonnx_config = dict(save_file='images')\n",
                           'onnx_config.save_file: must end with .onnx'),
    'no checkpoint': ("_base_ = ['{base}']\ncheckpoint = None\n",
                      'no checkpoint configured: give one with --checkpoint, or pass '
                      '--random-weights'),
    'missing checkpoint': ("_base_ = ['{base}']\ncheckpoint = 'nowhere.pth'\n",
                           'nowhere.pth: checkpoint file not found'),
    'opset too low': ("_base_ = ['{base}']\nonnx_config = dict(opset_version=10)\n",
                      'onnx_config.opset_version'),
    'opset too high': ("_base_ = ['{base}']\nonnx_config = dict(opset_version=99)\n",
                       'onnx_config.opset_version'),
    'save_file escapes': ("_base_ = ['{base}']\nonnx_config = dict(save_file='../../x.onnx')\n",
                          'onnx_config.save_file: must be a file name inside the work dir'),
    'syntax error': ("onnx_config = dict(\n", 'cannot load config'),
    'unknown model': ("_base_ = ['{base}']\nmodel = dict(type='EDSR')\n",
                      "model: unknown model type 'EDSR' (registered: "),
}
CHECKPOINTS = {
    'wrong keys': (_wrong_keys, 'unexpected keys: conv9.weight'),
    'wrong shapes': (_wrong_shapes, 'conv3.weight: checkpoint (3, 32, 3, 3) vs model'),
    'code in pickle': (_pickle_code, 'cannot load checkpoint safely'),
    'zero bytes': (lambda path: path.write_bytes(b''), 'cannot load checkpoint safely'),
}


def _run(args, capsys):
    code = deploy.main(args + SMALL)
    return code, capsys.readouterr().err


@pytest.mark.parametrize('name', CONFIGS)
def test_broken_configs(tmp_path, capsys, name):
    body, message = CONFIGS[name]
    code, err = _run(_config(tmp_path, body), capsys)
    assert code == 2, err
    assert message in err and err.startswith('deploy.py: error: ') and err.count('\n') == 1
    assert 'Traceback' not in err and not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name', CHECKPOINTS)
def test_broken_checkpoints(tmp_path, capsys, name):
    make, message = CHECKPOINTS[name]
    code, err = _run(_checkpoint(tmp_path, make), capsys)
    assert code == 2, err
    assert message in err and err.count('\n') == 1 and 'Traceback' not in err
    assert not (tmp_path / 'out').exists()
    assert not Path('/tmp/mmdeploy_srcnn_pwned').exists()


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR', b'hello'])
def test_broken_demo_images(tmp_path, capsys, content):
    image = tmp_path / 'demo.png'
    image.write_bytes(content)
    code, err = _run(['--work-dir', str(tmp_path / 'out'), BASE, '--img', str(image)], capsys)
    assert code == 2 and 'demo.png' in err and 'Traceback' not in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, message', [
    (['--cfg-options', 'garbage'], "'garbage' is not KEY=VALUE"),
    (['--cfg-options', 'onnx_config.opset_verison=13'],
     "did you mean 'onnx_config.opset_version'?"),
    (['--cfg-options', 'verify.atoll=1e-9'], "did you mean 'verify.atol'?"),
    (['--cfg-options', 'model.channels=abc'], 'model: cannot build SRCNN'),
    (['--compare-backends', 'bogus'], "--compare-backends: unknown backend 'bogus'"),
    (['--cfg-options', 'verify.sizes=[(100000,100000)]'],
     'verify: batch 2 of 100000x100000 (width x height) at x2 gives 8e+10 output pixels per '
     'model run, over the limit of 4 megapixels'),
    (['--cfg-options', 'verify.scales=[1e6]'], 'at x1e+06 gives 2.05e+15 output pixels'),
    (['--cfg-options', 'verify.scales=[1.0001]'], 'verify: x1.0001 adds no pixel to a side of '
                                                  '32 (engines copy such a side'),
])
def test_bad_arguments_are_refused_before_writing(tmp_path, capsys, args, message):
    code = deploy.main([BASE, '--work-dir', str(tmp_path / 'out'), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count('\n') == 1, err
    assert not (tmp_path / 'out').exists()


def test_demo_image_too_large_for_one_model_run_is_refused_before_writing(tmp_path, capsys):
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), np.zeros((1200, 1200, 3), np.uint8))
    code = deploy.main([BASE, '--work-dir', str(tmp_path / 'out'), '--img', str(big)])
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1
    assert f'{big}: the demo image: batch 1 of 1200x1200 (width x height) at x2 gives 5.76e+06 ' \
        'output pixels' in err and 'use a smaller size or scale' in err
    assert not (tmp_path / 'out').exists()


def test_work_dir_that_is_a_file_or_not_writable(tmp_path, capsys):
    a_file = tmp_path / 'file'
    a_file.write_text('x')
    assert deploy.main([BASE, '--work-dir', str(a_file)] + SMALL) == 2
    assert 'exists and is not a directory' in capsys.readouterr().err
    assert a_file.read_text() == 'x'
    assert deploy.main([BASE, '--work-dir', '/proc/mmdeploy_srcnn_out'] + SMALL) == 2
    err = capsys.readouterr().err
    assert err.startswith('deploy.py: error: ') and err.count('\n') == 1


def test_symlink_inside_the_work_dir_cannot_lead_outside(tmp_path, capsys):
    work_dir, outside = tmp_path / 'out', tmp_path / 'elsewhere'
    work_dir.mkdir()
    outside.mkdir()
    (work_dir / 'end2end.onnx').symlink_to(outside / 'stolen.onnx')
    (work_dir / 'images').symlink_to(outside)
    assert deploy.main([BASE, '--work-dir', str(work_dir)] + SMALL) == 2
    assert 'outside the work dir' in capsys.readouterr().err
    assert list(outside.iterdir()) == []


def test_random_weights_only_when_asked_and_the_report_says_so(tmp_path, capsys):
    import json
    assert deploy.main([BASE, '--work-dir', str(tmp_path), '--random-weights'] + SMALL) == 0
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['checkpoint'] is None and report['weights'].startswith('random')
