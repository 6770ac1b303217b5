"""The hostile-input corpus against ``srcnn-upscale``, one case per class of attack.

Every case runs the command in a child process, as a user would, and checks the exit code,
that stderr is exactly the expected line (naming the input, escaped), that no output and no
temporary file is left, and that the process's peak memory (``VmHWM``) stays under a bound,
with its address space limited so that a runaway allocation fails the test instead of the
machine. The inputs are generated here; nothing large is in git.
"""
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence

import numpy as np
import onnx
import pytest
from support import hostile
from support.hidden_external_data import RUNNABLE
from support.onnx_models import endless_loop_model, external_data_model

from mmdeploy_srcnn.app.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR, main
from mmdeploy_srcnn.app.upscaler import Upscaler
from mmdeploy_srcnn.utils.fileio import printable
from mmdeploy_srcnn.utils.image import read_image, write_image

ROOT = Path(__file__).resolve().parents[2]
REFUSAL_MB = 450  # refusing costs no more than importing the app and loading the model
MEMORY_LIMIT = 6 * 2**30  # address space of a child

CHILD = textwrap.dedent(f'''
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
    from mmdeploy_srcnn.app.cli import main
    try:
        code = main(sys.argv[2:])
    except SystemExit as exit_:
        code = exit_.code
    with open('/proc/self/status') as status:  # VmHWM: this process's peak RSS, in kB
        peak = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(sys.argv[1], 'w') as file:
        file.write(peak)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
''')


class Run(NamedTuple):
    code: int
    out: str
    err: List[str]
    peak_mb: float
    seconds: float  # from the start, or from the interrupt, to the exit


def run_cli(tmp_path: Path, args: Sequence[object], timeout: float = 180,
            interrupt_after: Optional[float] = None) -> Run:
    """``srcnn-upscale ARGS`` in a child process with limited address space."""
    peak_file = tmp_path / 'peak_kb'
    command = [sys.executable, '-c', CHILD, str(peak_file), *map(str, args)]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            process.send_signal(signal.SIGINT)
            started = time.monotonic()
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    seconds = time.monotonic() - started
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float('nan')
    return Run(process.returncode, out.decode(),
               err.decode('utf-8', 'backslashreplace').splitlines(), peak, seconds)


def leftovers(folder: Path) -> List[str]:
    """Files a run left in ``folder`` (outputs and hidden temporary files)."""
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / 'out'


def _model_with_metadata(source: Path, path: Path, **entries: str) -> Path:
    proto = onnx.load(str(source))
    for prop in proto.metadata_props:
        key = prop.key.removeprefix('mmdeploy_srcnn.')
        if key in entries:
            prop.value = entries[key]
    onnx.save(proto, str(path))
    return path


def _photo(path: Path, height: int, width: int) -> Path:
    write_image(path, np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8))
    return path


# ---- refusals: (name, make input (tmp_path) -> path, extra args, expected message) ---------

def _refused_cases():
    return [
        ('unbounded read: /dev/zero', lambda d: Path(hostile.DEV_ZERO), [],
         'is a character device, not an image file'),
        ('unbounded read: FIFO', lambda d: hostile.fifo(d / 'pipe.png'), [],
         'is a FIFO (named pipe), not an image file'),
        ('decompression bomb: 400 MP PNG', lambda d: hostile.png_bomb(d / 'bomb.png', 20000,
                                                                      20000), [],
         'megapixels) is over the limit of 200 megapixels (not decoded)'),
        ('decompression bomb: 16-bit 32767^2 PNG',
         lambda d: hostile.png_bomb(d / 'bomb16.png', 32767, 32767, bit_depth=16), [],
         'megapixels) is over the limit of 200 megapixels (not decoded)'),
        ('output over the limit, before decoding', lambda d: _photo(d / 'small.png', 100, 100),
         ['--scale', '3000'], 'gives 300000x300000, 9e+04 megapixels, over the limit of 200'),
        ('odd scale that no bounded tile can align',
         lambda d: _photo(d / 'wide.png', 8, 1300), ['--scale', '2.001'],
         'scale 2.001 cannot be tiled exactly within the memory bound'),
        ('truncated JPEG (half + end marker)',
         lambda d: hostile.jpeg_cut_with_end_marker(d / 'cut.jpg'), [],
         'truncated or corrupt JPEG file'),
        ('name with a newline and an escape sequence',
         lambda d: hostile.png_bad_crc(d / hostile.HOSTILE_NAME), [],
         'truncated or corrupt PNG file'),
        ('scale that overflows float32 sizes', lambda d: _photo(d / 's.png', 10, 10),
         ['--scale', '3.4e38'], 'overflows (the output size is not finite)'),
    ]


@pytest.mark.parametrize('case', _refused_cases(), ids=lambda case: case[0])
def test_hostile_inputs_are_refused_in_one_line(tmp_path, out_dir, srcnn_onnx, case):
    _, make, extra, expected = case
    source = make(tmp_path)
    args = [srcnn_onnx, source, '-o', out_dir / 'result.png', *(extra or ['--scale', '2'])]
    run = run_cli(tmp_path, args, timeout=60)
    assert run.code == EXIT_USER_ERROR, run
    assert len(run.err) == 1, run.err
    line = run.err[0]
    assert line.startswith(f'srcnn-upscale: error: {printable(source)}: ') and expected in line
    assert not any(char in line for char in '\r\x1b'), line
    assert leftovers(out_dir) == []
    assert run.peak_mb < REFUSAL_MB, run.peak_mb


@pytest.mark.parametrize('entries, expected', [
    ({'halo': '100000'}, "bad halo in model metadata: '100000'"),
    ({'halo': '65'}, 'bad model metadata: halo must be an int in 0..64'),
    ({'value_range': '-inf,inf'}, "bad value_range in model metadata: '-inf,inf'"),
    ({'factor_format': 'chw'}, 'bad model metadata: factor_format must be one of hw, nchw'),
])
def test_crafted_model_metadata_is_refused(tmp_path, out_dir, srcnn_onnx, entries, expected):
    model = _model_with_metadata(srcnn_onnx, tmp_path / 'crafted.onnx', **entries)
    run = run_cli(tmp_path, [model, _photo(tmp_path / 'p.png', 8, 8), '--out-dir', out_dir,
                             '--scale', 2])
    assert run.code == EXIT_USER_ERROR
    assert run.err == [f'srcnn-upscale: error: {model}: {expected}'] or (
        len(run.err) == 1 and expected in run.err[0]), run.err
    assert leftovers(out_dir) == []


def test_a_model_cannot_read_files_of_its_folder(tmp_path, out_dir):
    (tmp_path / 'id_rsa').write_bytes(b'-----BEGIN OPENSSH PRIVATE KEY-----')
    model = external_data_model(tmp_path / 'model.onnx', 'id_rsa')
    run = run_cli(tmp_path, [model, _photo(tmp_path / 'p.png', 8, 8), '--out-dir', out_dir,
                             '--scale', 2])
    assert run.code == EXIT_USER_ERROR
    assert len(run.err) == 1 and "keeps its data in another file ('id_rsa')" in run.err[0]
    assert leftovers(out_dir) == []


# ---- bounded memory and time ------------------------------------------------------------

@pytest.mark.slow
def test_huge_scale_runs_in_bounded_memory(tmp_path, out_dir, srcnn_onnx):
    source = _photo(tmp_path / 'tiny.png', 8, 10)
    run = run_cli(tmp_path, [srcnn_onnx, source, '--out-dir', out_dir, '--scale', 100,
                             '--quiet'])
    assert (run.code, run.err) == (0, []), run
    assert read_image(out_dir / 'tiny.png').shape == (800, 1000, 3)
    assert run.peak_mb < 700, run.peak_mb  # whole image at once: 0.8 MP x 1.8 KB = 1.4 GB


def test_endless_model_stops_at_the_timeout(tmp_path, out_dir):
    model = endless_loop_model(tmp_path / 'loop.onnx')
    source = _photo(tmp_path / 'p.png', 8, 8)
    run = run_cli(tmp_path, [model, source, '--out-dir', out_dir, '--scale', 2, '--timeout',
                             '0.5'], timeout=60)
    assert run.code == EXIT_USER_ERROR
    assert run.err == [f'srcnn-upscale: error: {source}: loop.onnx: the model took longer than '
                       'the timeout of 0.5 s for this image and was stopped']
    assert run.seconds < 20 and leftovers(out_dir) == []


def test_ctrl_c_stops_an_endless_model_within_two_seconds(tmp_path, out_dir):
    model = endless_loop_model(tmp_path / 'loop.onnx')
    run = run_cli(tmp_path, [model, _photo(tmp_path / 'p.png', 8, 8), '--out-dir', out_dir,
                             '--scale', 2], timeout=30, interrupt_after=4)
    assert run.code == EXIT_INTERRUPTED, run
    assert run.seconds < 2, run.seconds
    assert run.err[-1] == 'srcnn-upscale: interrupted (no partial output was left)'
    assert leftovers(out_dir) == []


# ---- the truth about inputs and outputs ---------------------------------------------------

def test_gray_alpha_stays_gray_alpha(tmp_path, out_dir, srcnn_onnx):
    source = tmp_path / 'ga.png'
    pixels = hostile.gray_alpha_png(source)
    run = run_cli(tmp_path, [srcnn_onnx, source, '--out-dir', out_dir, '--scale', 2, '-q'])
    assert (run.code, run.err) == (0, [])
    result = read_image(out_dir / 'ga.png')
    assert result.shape == (2 * pixels.shape[0], 2 * pixels.shape[1], 2)


def test_non_finite_pixels_are_an_error_of_the_api(srcnn_onnx):
    image = np.full((8, 8, 3), 0.5, np.float32)
    image[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match=r'the image has 1 non-finite value\(s\) \(NaN or inf\)'):
        Upscaler(srcnn_onnx).upscale(image, 2)


def test_threads_are_capped_at_the_cpus(tmp_path, out_dir, srcnn_onnx):
    run = run_cli(tmp_path, [srcnn_onnx, _photo(tmp_path / 'p.png', 8, 8), '--out-dir',
                             out_dir, '--scale', 2, '--threads', 2000, '-q'])
    assert run.code == 0
    assert len(run.err) == 1 and run.err[0].startswith('srcnn-upscale: warning: --threads 2000 '
                                                       'is more than the')


@pytest.mark.parametrize('scale', ['2_0', '0x2', '1e999', 'inf'])
def test_scales_are_read_strictly(capsys, srcnn_onnx, tmp_path, scale):
    with pytest.raises(SystemExit) as exit_:
        main([str(srcnn_onnx), str(_photo(tmp_path / 'p.png', 8, 8)), '-o',
              str(tmp_path / 'o.png'), '--scale', scale])
    assert exit_.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('srcnn-upscale: error: argument --scale: ')


def test_output_appearing_during_the_run_is_kept(capsys, srcnn_onnx, tmp_path, monkeypatch):
    source, output = _photo(tmp_path / 'p.png', 8, 8), tmp_path / 'o.png'
    real = Upscaler.upscale

    def upscale_while_someone_writes(self, *args, **kwargs):
        output.write_bytes(b'written by another process')
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Upscaler, 'upscale', upscale_while_someone_writes)
    assert main([str(srcnn_onnx), str(source), '-o', str(output), '--scale', '2']) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'srcnn-upscale: error: {output}: output file exists, not replaced (overwriting is off)']
    assert output.read_bytes() == b'written by another process'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['o.png', 'p.png']


@pytest.mark.parametrize('build', RUNNABLE.values(), ids=list(RUNNABLE))
def test_external_data_hidden_outside_the_initializers_is_refused(tmp_path, out_dir, build):
    (tmp_path / 'id_rsa').write_bytes(b'-----BEGIN OPENSSH PRIVATE KEY-----')
    model = build(tmp_path / 'model.onnx', 'id_rsa')
    run = run_cli(tmp_path, [model, _photo(tmp_path / 'p.png', 8, 8), '--out-dir', out_dir,
                             '--scale', 2])
    assert run.code == EXIT_USER_ERROR, run
    assert len(run.err) == 1, run.err
    assert run.err[0].startswith(f'srcnn-upscale: error: {model}: tensor '), run.err
    assert "keeps its data in another file ('id_rsa'); external data is refused" in run.err[0]
    assert leftovers(out_dir) == []


@pytest.mark.parametrize('entries, expected', [
    ({'value_range': '0,1e-300'}, 'bad model metadata: value_range must have low < high with '
                                  'high - low >= 0.001'),
    ({'value_range': '0,1e39'}, 'bad model metadata: value_range must be finite'),
    ({'halo': '\u0666'}, "bad halo in model metadata: '\u0666' (expected 1 to 3 ASCII digits)"),
])
def test_metadata_numbers_are_checked_as_float32_and_ascii(tmp_path, out_dir, srcnn_onnx,
                                                           entries, expected):
    model = _model_with_metadata(srcnn_onnx, tmp_path / 'crafted.onnx', **entries)
    run = run_cli(tmp_path, [model, _photo(tmp_path / 'p.png', 8, 8), '--out-dir', out_dir,
                             '--scale', 2])
    assert run.code == EXIT_USER_ERROR, run
    assert len(run.err) == 1 and run.err[0].startswith(f'srcnn-upscale: error: {model}: '), run
    assert expected in run.err[0], run.err
    assert leftovers(out_dir) == []


def test_scale_in_other_scripts_digits_is_refused(capsys, srcnn_onnx, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main([str(srcnn_onnx), str(_photo(tmp_path / 'p.png', 8, 8)), '-o',
              str(tmp_path / 'o.png'), '--scale', '\u0663'])
    assert exit_.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("srcnn-upscale: error: argument --scale: scale "
                                               "'\u0663' is not a number or HEIGHTxWIDTH"), err
    assert not (tmp_path / 'o.png').exists()
