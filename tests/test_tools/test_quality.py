"""The shipped checkpoint beats MATLAB bicubic on the test split (Y-PSNR, PyTorch model)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import data
from support.tools import load_tool

from mmdeploy_srcnn.utils.image import write_image

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / 'checkpoints' / 'srcnn_multiscale.pth'
# Mean Y-PSNR gain over bicubic (dB) that the shipped checkpoint must at least reach: about
# 0.1 dB below its measured gains, so that a regression (or a worse checkpoint) fails.
# Issue 5 asks for at least +0.7 at x3.
MIN_GAIN = {1.5: 1.6, 2.0: 1.2, 2.5: 0.9, 3.0: 0.8, 4.0: 0.65}
# measured: x1.5 +1.73, x2 +1.31, x2.5 +1.04, x3 +0.92, x4 +0.75


@pytest.fixture(scope='module')
def quality(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp('quality')
    scales = [str(scale) for scale in MIN_GAIN]
    result = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/srcnn_train.py', '--checkpoint',
         str(CHECKPOINT), '--builtin', 'test', '--scales', *scales, '--out-dir', str(out_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out_dir / 'quality.png').stat().st_size > 0
    return json.loads((out_dir / 'quality.json').read_text())


@pytest.mark.slow
def test_beats_bicubic_at_every_scale(quality):
    gains = {record['scale']: record['gain_db'] for record in quality['per_scale']}
    assert set(gains) == set(MIN_GAIN)
    for scale, minimum in MIN_GAIN.items():
        assert gains[scale] >= minimum, f'x{scale}: gain {gains[scale]:+.3f} dB < {minimum}'


def test_ssim_improves_and_images_are_all_scored(quality):
    assert len(quality['per_image']) == 6 * len(MIN_GAIN)
    for record in quality['per_scale']:
        assert record['ssim'] > record['bicubic_ssim']
    # The bicubic baseline is the MATLAB one: astronaut x3 matches the published-protocol figure.
    astronaut = next(r for r in quality['per_image']
                     if r['image'] == 'astronaut' and r['scale'] == 3.0)
    assert astronaut['bicubic_psnr'] == pytest.approx(28.68, abs=0.05)
    assert astronaut['shave'] == 3 and astronaut['hr_size'] == [510, 510]


test_tool = load_tool('test')
GOOD = ['--checkpoint', str(CHECKPOINT)]


def test_folder_of_images_gray_included(tmp_path, capsys):
    folder = tmp_path / 'hr'
    write_image(folder / 'rgb.png', data.astronaut()[100:160, 180:240])
    write_image(folder / 'gray.jpg', data.camera()[200:260, 200:260])
    (folder / 'notes.txt').write_text('not an image, not a suffix the tool reads')
    out = tmp_path / 'out'
    assert test_tool.main(['configs/srcnn_train.py', *GOOD, '--images', str(folder),
                           '--scales', '2', '--out-dir', str(out)]) == 0
    records = json.loads((out / 'quality.json').read_text())['per_image']
    assert [r['image'] for r in records] == ['gray.jpg', 'rgb.png']
    assert all(r['hr_size'] == [60, 60] and r['gain_db'] > 0 for r in records)


@pytest.mark.parametrize('files, args, message', [
    ({}, ['--checkpoint', 'nope.pth'], 'nope.pth: checkpoint file not found'),
    ({}, [*GOOD, '--images', 'no_such_folder'], 'no_such_folder: no such folder'),
    ({'a.png': b'not a png'}, GOOD, 'a.png: not an image'),
    ({'deep.png': np.zeros((8, 8, 3), np.uint16)}, GOOD, 'deep.png: not an 8-bit RGB or gray'),
    ({'a.png': np.zeros((8, 8, 3), np.uint8)}, [*GOOD, '--scales', '1'],
     "argument --scales: scale '1' must be one number > 1"),
    ({'a.png': np.zeros((8, 8, 3), np.uint8)}, [*GOOD, '--scales', '2_0'],
     "argument --scales: scale '2_0' is not a number"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, files, args, message):
    folder = tmp_path / 'hr'
    folder.mkdir()
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            write_image(folder / name, content)
    images = ['--images', str(folder)] if files else []
    out = tmp_path / 'out'
    try:
        code = test_tool.main(['configs/srcnn_train.py', *images, *args, '--out-dir', str(out)])
    except SystemExit as exit_:  # argument errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_runs_for_a_model_go_engine_by_engine_over_the_precisions_each_runs():
    import argparse
    args = argparse.Namespace(backend=['openvino', 'onnxruntime'], precision=['f32', 'bf16'],
                              quality_table=None)
    assert test_tool.runs_to_make(args) == [('openvino', 'f32'), ('openvino', 'bf16'),
                                            ('onnxruntime', 'f32')]
    args.precision, args.quality_table = ['bf16'], 'table.json'
    with pytest.raises(ValueError, match='measures losses against f32: include f32'):
        test_tool.runs_to_make(args)
    args.backend = ['onnxruntime']
    with pytest.raises(ValueError, match="precision 'bf16' is not supported on onnxruntime"):
        test_tool.runs_to_make(args)
