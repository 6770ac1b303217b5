"""The app's bad-input corpus beyond test_cli.py, and killing it mid-write."""
import struct
import sys
import textwrap
import zlib

import numpy as np
from skimage import data
from support.processes import sigkill_when_marker_appears

from mmdeploy_srcnn.app.cli import main
from mmdeploy_srcnn.utils.image import read_image, write_image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload)))


def _png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG header that declares a huge image, with one tiny data chunk."""
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header)
            + _chunk(b'IDAT', zlib.compress(b'\x00' * 16)) + _chunk(b'IEND', b''))


def _run(capsys, *args):
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.splitlines()


def test_one_pixel_image_is_upscaled(capsys, srcnn_onnx, tmp_path):
    write_image(tmp_path / 'dot.png', np.full((1, 1, 3), 200, np.uint8))
    code, err = _run(capsys, srcnn_onnx, tmp_path / 'dot.png', '-o', tmp_path / 'out.png',
                     '--scale', '3')
    assert code == 0, err
    assert read_image(tmp_path / 'out.png').shape == (3, 3, 3)


def test_huge_declared_size_is_refused_without_allocating(capsys, srcnn_onnx, tmp_path):
    bomb = tmp_path / 'bomb.png'
    bomb.write_bytes(_png_declaring(200_000, 200_000))  # 40 gigapixels declared, 100 bytes
    code, err = _run(capsys, srcnn_onnx, bomb, '-o', tmp_path / 'out.png', '--scale', '2')
    assert code == 2
    assert len(err) == 1 and str(bomb) in err[0] and 'Traceback' not in err[0]
    assert not (tmp_path / 'out.png').exists()


def test_scale_10000_is_over_the_output_limit(capsys, srcnn_onnx, tmp_path):
    write_image(tmp_path / 'small.png', data.astronaut()[:64, :64])
    code, err = _run(capsys, srcnn_onnx, tmp_path / 'small.png', '-o', tmp_path / 'out.png',
                     '--scale', '10000')
    assert code == 2 and 'over the limit' in err[-1]
    assert not (tmp_path / 'out.png').exists()


KILLED_WRITER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from mmdeploy_srcnn.app.cli import main
    from mmdeploy_srcnn.utils import fileio

    marker = Path(sys.argv[1])

    def stalled_fsync(fd):
        marker.touch()  # the temporary file holds the new image, not yet renamed
        time.sleep(60)

    fileio.os.fsync = stalled_fsync
    sys.exit(main(sys.argv[2:]))
''')


def test_sigkill_mid_write_keeps_the_previous_output(srcnn_onnx, tmp_path):
    write_image(tmp_path / 'photo.png', data.astronaut()[:48, :48])
    output = tmp_path / 'up.png'
    output.write_bytes(b'previous result')
    marker = tmp_path / 'writing'
    sigkill_when_marker_appears([sys.executable, '-c', KILLED_WRITER, str(marker), str(srcnn_onnx),
                                 str(tmp_path / 'photo.png'), '-o', str(output), '--scale', '2',
                                 '--overwrite'], marker)
    assert output.read_bytes() == b'previous result'
    stray = [p.name for p in tmp_path.iterdir() if p.name.startswith('.up.')]
    assert all('.tmp' in name for name in stray)
