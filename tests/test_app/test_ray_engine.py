"""``srcnn-upscale --engine ray``: the same outputs as the local engine, resuming, Ctrl-C.

One local Ray with 2 CPUs serves the module (the command joins a Ray this process already
runs); the Ctrl-C test runs the command in a child process, which starts and stops its own.
"""
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import ray
from skimage import data

from mmdeploy_srcnn.app.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR, main
from mmdeploy_srcnn.app.run_summary import SUMMARY_NAME
from mmdeploy_srcnn.utils.image import read_image, write_image

ROOT = Path(__file__).resolve().parents[2]
# Ray Data 2.60 copies its DataContext per run, which sets its own deprecated fields.
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:ray.data.context')
IMAGES = ['alpha.png', 'deep.tif', 'gray.png', 'photo.png']
BROKEN = ['broken.png', 'cut.png']


@pytest.fixture(scope='module')
def local_ray():
    ray.init(address='local', num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, _node_ip_address='127.0.0.1')
    yield
    ray.shutdown()


@pytest.fixture(scope='module')
def mixed(tmp_path_factory) -> Path:
    """RGB, gray, RGBA and 16-bit images, a file that is no image and a truncated PNG."""
    folder = tmp_path_factory.mktemp('mixed')
    photo = data.astronaut()[150:190, 170:220]
    write_image(folder / 'photo.png', photo)
    write_image(folder / 'gray.png', data.camera()[100:130, 200:240])
    write_image(folder / 'deep.tif', photo.astype(np.uint16) * 257)
    write_image(folder / 'alpha.png', np.dstack([photo, np.tri(40, 50, dtype=np.uint8) * 255]))
    (folder / 'broken.png').write_bytes(b'not a png')
    (folder / 'cut.png').write_bytes((folder / 'photo.png').read_bytes()[:400])
    return folder


def run(capsys, *args) -> tuple:
    """``main(args)`` -> (exit code, stdout, stderr lines)."""
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def summary_of(folder: Path) -> dict:
    return json.loads((folder / SUMMARY_NAME).read_text())


def expected_errors(mixed: Path) -> list:
    return [f'srcnn-upscale: error: {mixed / "broken.png"}: not an image (unknown file format)',
            f'srcnn-upscale: error: {mixed / "cut.png"}: truncated or corrupt PNG file']


def test_ray_equals_local_byte_for_byte_then_resumes_and_overwrites(
        capsys, local_ray, srcnn_onnx, mixed, tmp_path, monkeypatch):
    local, remote = tmp_path / 'local', tmp_path / 'ray'
    code, _, err = run(capsys, srcnn_onnx, mixed, '--out-dir', local, '--scale', '2.5')
    assert code == EXIT_USER_ERROR and sorted(err) == expected_errors(mixed)

    code, out, err = run(capsys, srcnn_onnx, mixed, '--out-dir', remote, '--scale', '2.5',
                         '--engine', 'ray', '--workers', 2)
    assert code == EXIT_USER_ERROR
    assert sorted(err) == expected_errors(mixed)  # each bad image, one line, the rest done
    assert out.startswith('4 of 6 images upscaled at x2.5 (onnxruntime f32), 2 failed in ')
    assert out.rstrip().endswith(f'on Ray (2 workers, 1 thread each); summary: '
                                 f'{remote / SUMMARY_NAME}')
    assert sorted(p.name for p in remote.iterdir()) == sorted(IMAGES + [SUMMARY_NAME])
    for name in IMAGES:
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    summary = summary_of(remote)
    assert summary['state'] == 'finished'
    assert summary['settings']['precision'] == 'f32'  # what auto resolved to, for every worker
    assert summary['counts'] == {'done': 4, 'skipped': 0, 'failed': 2, 'not_run': 0}
    assert sorted(entry['input'] for entry in summary['done']) == \
        [str(mixed / name) for name in IMAGES]
    assert sorted((entry['input'], 'srcnn-upscale: error: ' + entry['reason'])
                  for entry in summary['failed']) == \
        list(zip([str(mixed / name) for name in BROKEN], expected_errors(mixed)))
    assert summary['settings']['scale'] == [2.5, 2.5]

    before = {name: (remote / name).stat().st_ino for name in IMAGES}
    code, out, err = run(capsys, srcnn_onnx, mixed, '--out-dir', remote, '--scale', '2.5',
                         '--engine', 'ray')
    assert code == EXIT_USER_ERROR and sorted(err) == expected_errors(mixed)  # retried
    assert out.startswith('0 of 6 images upscaled at x2.5 (onnxruntime f32), 4 skipped (done '
                          'before), 2 failed in ')
    assert {name: (remote / name).stat().st_ino for name in IMAGES} == before
    summary = summary_of(remote)
    assert summary['counts'] == {'done': 0, 'skipped': 4, 'failed': 2, 'not_run': 0}
    assert {entry['reason'] for entry in summary['skipped']} == {'output exists'}

    monkeypatch.setattr(sys.stderr, 'isatty', lambda: True, raising=False)
    code, out, err = run(capsys, srcnn_onnx, *(mixed / name for name in IMAGES), '--out-dir',
                         remote, '--scale', '2.5', '--engine', 'ray', '--overwrite')
    assert code == 0
    assert '4/4' in ' '.join(err)  # the progress bar, on a terminal only
    assert out.startswith('4 of 4 images upscaled at x2.5 (onnxruntime f32) in ')
    assert all((remote / name).stat().st_ino != before[name] for name in IMAGES)  # rewritten
    for name in IMAGES:
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    assert summary_of(remote)['counts'] == {'done': 4, 'skipped': 0, 'failed': 0, 'not_run': 0}


def test_resuming_with_other_settings_is_refused(capsys, local_ray, srcnn_onnx, mixed,
                                                 tmp_path):
    out_dir = tmp_path / 'out'
    photo = mixed / 'photo.png'
    assert run(capsys, srcnn_onnx, photo, '--out-dir', out_dir, '--scale', '2', '--engine',
               'ray', '-q')[:2] == (0, '')
    written = (out_dir / 'photo.png').read_bytes()
    code, out, err = run(capsys, srcnn_onnx, photo, '--out-dir', out_dir, '--scale', '3',
                         '--engine', 'ray')
    assert (code, out) == (EXIT_USER_ERROR, '')
    assert err == [f'srcnn-upscale: error: {out_dir / SUMMARY_NAME}: the outputs in {out_dir} '
                   'were made with scale x2 (this run: x3); pass --overwrite to redo them, or '
                   'choose another --out-dir']
    assert (out_dir / 'photo.png').read_bytes() == written
    assert summary_of(out_dir)['settings']['scale'] == [2.0, 2.0]


def test_a_ray_that_cannot_be_reached_leaves_the_images_not_run(capsys, monkeypatch, srcnn_onnx,
                                                                mixed, tmp_path):
    from mmdeploy_srcnn.app import ray_command
    from mmdeploy_srcnn.app.ray_engine import RayEngineError

    def unreachable(*args):
        raise RayEngineError('cannot connect to Ray at auto (Could not find any running Ray '
                             'instance)')

    monkeypatch.setattr(ray_command, '_run_pool', unreachable)
    out_dir = tmp_path / 'out'
    code, out, err = run(capsys, srcnn_onnx, mixed / 'photo.png', mixed / 'gray.png',
                         '--out-dir', out_dir, '--scale', '2', '--engine', 'ray',
                         '--ray-address', 'auto')
    assert code == EXIT_USER_ERROR
    assert err == ['srcnn-upscale: error: cannot connect to Ray at auto (Could not find any '
                   'running Ray instance)']
    assert out.startswith('0 of 2 images upscaled at x2 (onnxruntime f32), 2 not run in ')
    summary = summary_of(out_dir)
    assert summary['state'] == 'engine failed'
    assert summary['counts'] == {'done': 0, 'skipped': 0, 'failed': 0, 'not_run': 2}
    assert sorted(p.name for p in out_dir.iterdir()) == [SUMMARY_NAME]


def test_a_file_named_like_the_summary_but_not_ours_is_kept(capsys, srcnn_onnx, mixed,
                                                            tmp_path):
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / SUMMARY_NAME).write_text('{"user": "data"}')
    for extra in [[], ['--overwrite']]:
        code, out, err = run(capsys, srcnn_onnx, mixed / 'photo.png', '--out-dir', out_dir,
                             '--scale', '2', '--engine', 'ray', *extra)
        assert (code, out) == (EXIT_USER_ERROR, '')
        expected = f'srcnn-upscale: error: {out_dir / SUMMARY_NAME}: not a summary of this tool'
        assert len(err) == 1 and err[0].startswith(expected)
        assert (out_dir / SUMMARY_NAME).read_text() == '{"user": "data"}'
        assert sorted(p.name for p in out_dir.iterdir()) == [SUMMARY_NAME]


# Stalls the write of $STALL_DIR/$STALL_NAME after creating $STALL_MARKER, in whichever process
# does it (a Ray worker): the moment to press Ctrl-C.
STALLING_SITECUSTOMIZE = textwrap.dedent('''
    import os, time
    _real_fsync = os.fsync

    def _fsync(fd):
        try:
            name = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            name = ''
        if name.startswith(os.path.join(os.environ['STALL_DIR'], '.' + os.environ['STALL_NAME'])):
            open(os.environ['STALL_MARKER'], 'a').close()
            time.sleep(120)
        return _real_fsync(fd)

    os.fsync = _fsync
''')


def test_ctrl_c_stops_the_pool_and_leaves_no_partial_file(srcnn_onnx, tmp_path):
    inputs, out_dir, hooks = tmp_path / 'in', tmp_path / 'out', tmp_path / 'hooks'
    rng = np.random.default_rng(0)
    for index in range(12):
        write_image(inputs / f'im{index:02d}.png', rng.integers(0, 256, (64, 64, 3), np.uint8))
    hooks.mkdir()
    (hooks / 'sitecustomize.py').write_text(STALLING_SITECUSTOMIZE)
    marker = tmp_path / 'writing'
    env = dict(os.environ, PYTHONPATH=str(hooks), STALL_DIR=str(out_dir),
               STALL_NAME='im06.png.', STALL_MARKER=str(marker))
    process = subprocess.Popen(
        [sys.executable, '-m', 'mmdeploy_srcnn.app', str(srcnn_onnx), str(inputs),
         '--out-dir', str(out_dir), '--scale', '2', '--engine', 'ray', '--workers', '2'],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240  # Ray's start on 2 busy CPUs
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, 'no worker started writing'
            time.sleep(0.05)
        assert [name for name in os.listdir(out_dir) if name.startswith('.im06.png.')]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED, err
    # Ray's own processes may still log a line while they stop: ours is there, once
    assert err.decode().splitlines().count(
        'srcnn-upscale: interrupted (no partial output was left; a rerun resumes)') == 1, err
    left = sorted(os.listdir(out_dir))
    assert SUMMARY_NAME in left and not [name for name in left if name.startswith('.')]
    summary = summary_of(out_dir)
    assert summary['state'] == 'interrupted'
    done = sorted(Path(entry['output']).name for entry in summary['done'])
    assert sorted(set(left) - {SUMMARY_NAME}) == done  # every file left is a finished image
    assert summary['counts']['not_run'] == 12 - len(done) > 0
    for name in done:
        assert read_image(out_dir / name).shape == (128, 128, 3)


def test_rows_are_grouped_in_blocks_that_still_spread_over_every_worker():
    from mmdeploy_srcnn.app.ray_engine import Pool, block_count

    assert block_count(200, Pool(1, 1)) == 20  # 10 images a block
    assert block_count(200, Pool(8, 1)) == 32  # at least 4 blocks a worker
    assert block_count(12, Pool(2, 1)) == 8
    assert block_count(3, Pool(2, 1)) == 3  # never an empty block
