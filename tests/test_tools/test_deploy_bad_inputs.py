"""A corpus of broken inputs for tools/deploy.py: each gets a one-line error and exit code 2,
and nothing is written."""
import pickle
import textwrap
from pathlib import Path

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
                                "unexpected keyword argument 'thread'"),
    'opset too low': ("_base_ = ['{base}']\nonnx_config = dict(opset_version=10)\n",
                      'onnx_config.opset_version'),
    'opset too high': ("_base_ = ['{base}']\nonnx_config = dict(opset_version=99)\n",
                       'onnx_config.opset_version'),
    'save_file escapes': ("_base_ = ['{base}']\nonnx_config = dict(save_file='../../x.onnx')\n",
                          'onnx_config.save_file: must be a file name inside the work dir'),
    'syntax error': ("onnx_config = dict(\n", 'cannot load config'),
    'unknown model': ("_base_ = ['{base}']\nmodel = dict(type='EDSR')\n",
                      "model.type: unknown model 'EDSR' (registered: SRCNN)"),
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
    assert message in err and err.startswith('error: ') and err.count('\n') == 1
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
