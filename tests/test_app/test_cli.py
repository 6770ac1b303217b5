"""srcnn-upscale: outputs, batches, --compare, and one-line errors with exit code 2."""
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from mmdeploy_srcnn.app import Upscaler, resize_bicubic
from mmdeploy_srcnn.app.cli import _TileProgress, main
from mmdeploy_srcnn.utils.image import read_image, write_image


@pytest.fixture
def images(tmp_path) -> Path:
    """A folder of small test images: RGB photo, grayscale, 16-bit, RGBA."""
    folder = tmp_path / 'images'
    photo = data.astronaut()[150:190, 170:220]
    write_image(folder / 'photo.png', photo)
    write_image(folder / 'gray.png', data.camera()[100:130, 200:240])
    write_image(folder / 'deep.tif', photo.astype(np.uint16) * 257)
    write_image(folder / 'alpha.png', np.dstack([photo, np.tri(40, 50, dtype=np.uint8) * 255]))
    return folder


def run(capsys, *args) -> tuple:
    """``main(args)`` -> (exit code, stdout, stderr lines)."""
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_single_image_at_fractional_and_anisotropic_scales(capsys, srcnn_onnx, images, tmp_path):
    for scale, shape in [('2.5', (100, 125, 3)), ('2x3', (80, 150, 3))]:
        output = tmp_path / f'out_{scale}.png'
        code, out, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', output,
                             '--scale', scale)
        assert (code, err) == (0, [])
        assert read_image(output).shape == shape
        assert out.count('\n') == 1  # one success line
        scale_label = f'x{scale} (HxW)' if 'x' in scale else f'x{scale}'
        assert out.startswith(f'upscaled {images / "photo.png"} (50x40 WxH) {scale_label} -> '
                              f'{output} ({shape[1]}x{shape[0]} WxH) on onnxruntime f32 in ')


def test_quiet_prints_nothing_on_success(capsys, srcnn_onnx, images, tmp_path):
    assert run(capsys, srcnn_onnx, images / 'photo.png', '-o', tmp_path / 'q.png', '--scale',
               2, '--quiet') == (0, '', [])
    assert run(capsys, srcnn_onnx, images, '--out-dir', tmp_path / 'qq', '--scale', 2,
               '-q') == (0, '', [])


_TILE_PROGRESS_MIN = _TileProgress.MIN_TILES


def test_progress_over_the_tiles_of_one_large_image(capsys, srcnn_onnx, tmp_path, monkeypatch):
    large = tmp_path / 'large.png'
    write_image(large, np.random.default_rng(0).integers(0, 255, (64, 80, 3), np.uint8))
    args = (srcnn_onnx, large, '-o', tmp_path / 'large_x2.png', '--scale', 2, '--tile', 64,
            '--overwrite')
    tiles = Upscaler(srcnn_onnx, tile=64).tile_count((64, 80), 2)
    assert tiles > _TILE_PROGRESS_MIN
    code, out, err = run(capsys, *args)
    assert (code, err) == (0, [])  # not a terminal: no progress bar in logs
    monkeypatch.setattr(sys.stderr, 'isatty', lambda: True, raising=False)
    code, out, err = run(capsys, *args)
    assert code == 0 and f'{tiles}/{tiles}' in ' '.join(err)  # on stderr
    assert out.startswith('upscaled ')


def test_missing_input_folder_is_named(capsys, srcnn_onnx, tmp_path):
    code, out, err = run(capsys, srcnn_onnx, tmp_path / 'photos', '--out-dir', tmp_path / 'up',
                         '--scale', 2)
    assert code == 2 and out == ''
    assert err == [f'srcnn-upscale: error: {tmp_path / "photos"}: no such file or folder']


def test_layouts_and_bit_depths_survive(capsys, srcnn_onnx, images, tmp_path):
    code, out, err = run(capsys, srcnn_onnx, images, '--out-dir', tmp_path / 'up', '--scale', 2)
    assert (code, err) == (0, [])
    assert '4 of 4 images upscaled at x2 (onnxruntime f32) in ' in out
    for name in ['photo.png', 'gray.png', 'deep.tif', 'alpha.png']:
        source, result = read_image(images / name), read_image(tmp_path / 'up' / name)
        assert result.dtype == source.dtype
        assert result.shape == (source.shape[0] * 2, source.shape[1] * 2) + source.shape[2:]
    alpha = read_image(images / 'alpha.png')[..., 3]
    np.testing.assert_array_equal(read_image(tmp_path / 'up' / 'alpha.png')[..., 3],
                                  resize_bicubic(alpha, 2))


def test_compare_writes_bicubic_beside_the_model(capsys, srcnn_onnx, images, tmp_path):
    output = tmp_path / 'photo_x3.png'
    code, out, _ = run(capsys, srcnn_onnx, images / 'photo.png', '-o', output, '--scale', 3,
                       '--compare')
    assert code == 0
    assert out.endswith(f' s; bicubic | model in {tmp_path / "photo_x3_compare.png"}\n')
    compare = read_image(tmp_path / 'photo_x3_compare.png')
    assert compare.shape == (120, 300, 3)
    bicubic = resize_bicubic(read_image(images / 'photo.png'), 3)
    np.testing.assert_array_equal(compare[:, :150], bicubic)
    np.testing.assert_array_equal(compare[:, 150:], read_image(output))


def test_batch_reports_a_bad_file_and_processes_the_rest(capsys, srcnn_onnx, images, tmp_path):
    (images / 'broken.png').write_bytes(b'not a png')
    code, out, err = run(capsys, srcnn_onnx, images, images / 'missing.jpg', '--out-dir',
                         tmp_path / 'up', '--scale', 2.5)
    assert code == 2
    assert err == [
        f'srcnn-upscale: error: {images / "missing.jpg"}: no such file or folder',
        f'srcnn-upscale: error: {images / "broken.png"}: not an image (unknown file format)']
    assert '4 of 6 images upscaled at x2.5 (onnxruntime f32), 2 failed' in out
    assert sorted(path.name for path in (tmp_path / 'up').iterdir()) == \
        ['alpha.png', 'deep.tif', 'gray.png', 'photo.png']


def _make(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize('case', ['missing', 'empty', 'not an image', 'truncated', 'too large',
                                  'alpha to jpeg', 'unknown suffix', 'output is the input'])
def test_user_errors_are_one_line_with_exit_code_2(capsys, srcnn_onnx, images, tmp_path, case):
    photo, output = images / 'photo.png', tmp_path / 'out' / 'result.png'
    source, target, options, problem = {
        'missing': (tmp_path / 'nope.png', output, [], '{source}: no such file or folder'),
        'empty': (_make(tmp_path, 'empty.png', b''), output, [],
                  '{source}: empty file (0 bytes)'),
        'not an image': (_make(tmp_path, 'text.jpg', b'hello'), output, [],
                         '{source}: not an image (unknown file format)'),
        'truncated': (_make(tmp_path, 'cut.png', photo.read_bytes()[:500]), output, [],
                      '{source}: truncated or corrupt PNG file'),
        'too large': (photo, output, ['--max-megapixels', '0.005'],
                      '{source}: 50x40 (width x height) at scale 2 gives 100x80, 0.008 '
                      'megapixels, over the limit of 0.005'),
        'alpha to jpeg': (images / 'alpha.png', tmp_path / 'a.jpg', [],
                          '{target}: .jpg cannot store the alpha channel (write .png, .tif or '
                          '.webp instead)'),
        'unknown suffix': (photo, tmp_path / 'a.gif', [], '{target}: cannot write .gif (use one '
                           'of .png, .tif, .tiff, .webp, .bmp, .jpg, .jpeg)'),
        'output is the input': (photo, photo, [], '{source}: output path is also an input; '
                                'choose another output'),
    }[case]
    before = sorted(tmp_path.rglob('*'))
    code, _, err = run(capsys, srcnn_onnx, source, '-o', target, '--scale', 2, *options)
    assert code == 2
    assert err == ['srcnn-upscale: error: ' + problem.format(source=source, target=target)]
    assert sorted(tmp_path.rglob('*')) == before  # no output, no temporary file left behind


def test_existing_output_needs_overwrite(capsys, srcnn_onnx, images, tmp_path):
    output = tmp_path / 'result.png'
    output.write_bytes(b'keep me')
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', output, '--scale', 2)
    assert code == 2 and err == [f'srcnn-upscale: error: {output}: output file exists '
                                 '(pass --overwrite to replace it)']
    assert output.read_bytes() == b'keep me'
    assert run(capsys, srcnn_onnx, images / 'photo.png', '-o', output, '--scale', 2,
               '--overwrite')[0] == 0
    assert read_image(output).shape == (80, 100, 3)


def test_out_dir_equal_to_the_input_folder_is_refused(capsys, srcnn_onnx, images):
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '--out-dir', images,
                       '--scale', 2)
    assert code == 2 and err == [f'srcnn-upscale: error: {images / "photo.png"}: output path is '
                                 'also an input; choose another output']


def test_a_model_that_does_not_record_its_convention_gets_a_warning(capsys, srcnn_onnx, images,
                                                                    tmp_path):
    import onnx
    stripped = tmp_path / 'stripped.onnx'
    proto = onnx.load(str(srcnn_onnx))
    kept = [prop for prop in proto.metadata_props if not prop.key.endswith(('.halo', '.output'))]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(stripped))
    code, out, err = run(capsys, stripped, images / 'photo.png', '-o', tmp_path / 'o.png',
                         '--scale', 2)
    assert code == 0 and out.startswith('upscaled ')
    assert err == [f'srcnn-upscale: warning: {stripped} does not record how it is fed (not '
                   "exported by this tool?): assuming SRCNN's output='output', halo=6"]
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', tmp_path / 'p.png',
                       '--scale', 2)
    assert (code, err) == (0, [])  # an exported model records all of it


@pytest.mark.parametrize('scale', ['0', '-2', 'nan', 'inf', '2x', 'abc', 'x3', '2x3x4', '1e39',
                                   '0.5', '2x0.9'])
def test_bad_scales_exit_2_with_the_reason(capsys, srcnn_onnx, images, tmp_path, scale):
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', tmp_path / 'o.png',
                       '--scale', scale)
    assert code == 2
    assert len(err) == 1 and err[0].startswith('srcnn-upscale: error: argument --scale: ')
    assert err[0].endswith('(see srcnn-upscale --help)')
    assert not (tmp_path / 'o.png').exists()


def test_argument_errors(capsys, srcnn_onnx, images, tmp_path):
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', images / 'gray.png', '-o',
                       tmp_path / 'o.png', '--scale', 2)
    assert code == 2 and err == ['srcnn-upscale: error: -o/--output takes a single image; use '
                                 '--out-dir DIR for several (see srcnn-upscale --help)']
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', tmp_path / 'o.png',
                       '--scale', 2, '--tile', 8)
    assert code == 2 and err == ["srcnn-upscale: error: argument --tile: tile must be 0 (off) "
                                 "or >= 64, got '8' (see srcnn-upscale --help)"]
    code, _, err = run(capsys, srcnn_onnx, images / 'photo.png', '-o', tmp_path / 'o.png',
                       '--scale', 2, '--max-megapixels', 'inf')
    assert code == 2 and err[-1].startswith("srcnn-upscale: error: argument --max-megapixels: "
                                            "max-megapixels must be a number, got 'inf'")
    code, _, err = run(capsys, tmp_path / 'none.onnx', images / 'photo.png', '-o',
                       tmp_path / 'o.png', '--scale', 2)
    assert code == 2 and err == [f'srcnn-upscale: error: {tmp_path / "none.onnx"}: ONNX model '
                                 'file not found']


_NO_TORCH_PRELUDE = textwrap.dedent('''
    import importlib.abc, runpy, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == 'torch' or name.startswith('torch.'):
                raise ImportError(f'torch is blocked in this test ({name})')
            return None

    sys.meta_path.insert(0, NoTorch())
    sys.argv = ['srcnn-upscale'] + sys.argv[1:]
    runpy.run_module('mmdeploy_srcnn.app', run_name='__main__')
''')


def test_runs_with_torch_unimportable(srcnn_onnx, images, tmp_path):
    output = tmp_path / 'no_torch.png'
    result = subprocess.run(
        [sys.executable, '-c', _NO_TORCH_PRELUDE, str(srcnn_onnx), str(images / 'alpha.png'),
         '-o', str(output), '--scale', '2x3', '--tile', '64'],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_image(output).shape == (80, 150, 4)


def test_console_script_help():
    script = shutil.which('srcnn-upscale', path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip('package not installed with its console script')
    result = subprocess.run([script, '--help'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert 'HEIGHTxWIDTH' in result.stdout and '--max-megapixels' in result.stdout


def test_folder_edge_cases(capsys, srcnn_onnx, images, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    code, _, err = run(capsys, srcnn_onnx, empty, '--out-dir', tmp_path / 'up', '--scale', 2)
    assert code == 2 and err == [f'srcnn-upscale: error: {empty}: folder has no .png, .tif, '
                                 '.tiff, .webp, .bmp, .jpg, .jpeg images']
    code, _, err = run(capsys, srcnn_onnx, images, '-o', tmp_path / 'o.png', '--scale', 2)
    assert code == 2 and err == ['srcnn-upscale: error: -o/--output takes a single image; use '
                                 '--out-dir DIR for several (see srcnn-upscale --help)']
    twin = tmp_path / 'twin'
    twin.mkdir()
    shutil.copy(images / 'photo.png', twin / 'photo.png')
    code, out, err = run(capsys, srcnn_onnx, images / 'photo.png', twin / 'photo.png',
                         '--out-dir', tmp_path / 'up', '--scale', 2)
    assert code == 2 and err == [f'srcnn-upscale: error: {tmp_path / "up" / "photo.png"}: output '
                                 f'path is also the output for {images / "photo.png"}']
    assert '1 of 2 images upscaled at x2 (onnxruntime f32), 1 failed in ' in out


def test_a_missing_engine_is_one_error_not_a_batch_of_failures(capsys, srcnn_onnx, images,
                                                               tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'openvino', None)  # `import openvino` fails
    code, out, err = run(capsys, srcnn_onnx, images, '--out-dir', tmp_path / 'up', '--scale', 2,
                         '--backend', 'openvino')
    assert code == 2 and out == ''
    assert err == ["srcnn-upscale: error: the openvino backend needs the 'openvino' package, "
                   "which is not installed: pip install 'mmdeploy_srcnn[openvino]'"]
    assert not (tmp_path / 'up').exists()
