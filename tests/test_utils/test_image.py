"""Reading images as hostile input: header probing, limits before decoding, truthful decoders.

The hostile corpus runs in a child process so that its peak memory (``VmHWM``) and its
standard error can be measured; the child also runs under an address-space limit, so a
regression that decodes a bomb fails at once instead of exhausting the machine.
"""
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image
from support import hostile

from mmdeploy_srcnn.utils import image as image_module
from mmdeploy_srcnn.utils.fileio import printable
from mmdeploy_srcnn.utils.image import ImageError, probe_image, read_image, write_image

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMORY_BOUND_MB = 200
RGB = hostile.photo(48)[:40]
GRAY = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)


def _pil(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format, **options)
    return buffer.getvalue()


def _cv(suffix: str, image: np.ndarray) -> bytes:
    return cv2.imencode(suffix, image)[1].tobytes()


def _rgba_with_alpha() -> Image.Image:
    alpha = np.linspace(0, 255, GRAY.size).reshape(GRAY.shape).astype(np.uint8)
    return Image.fromarray(np.dstack([RGB, alpha]), 'RGBA')


def _jpeg_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return _pil(Image.fromarray(RGB), 'JPEG', exif=exif)


# Each variant: file bytes, and the (height, width, channels, dtype) read_image must return.
VARIANTS = {
    'png-gray-1bit': (lambda: _pil(Image.fromarray(GRAY > 128), 'PNG'), (40, 48, 1, 'uint8')),
    'png-gray-8': (lambda: _pil(Image.fromarray(GRAY), 'PNG'), (40, 48, 1, 'uint8')),
    'png-gray-16': (lambda: _cv('.png', GRAY.astype(np.uint16) * 257), (40, 48, 1, 'uint16')),
    'png-rgb-8': (lambda: _cv('.png', RGB), (40, 48, 3, 'uint8')),
    'png-rgba-16': (lambda: _cv('.png', np.dstack([RGB, RGB[..., :1]]).astype(np.uint16)),
                    (40, 48, 4, 'uint16')),
    'png-palette': (lambda: _pil(Image.fromarray(RGB).convert('P'), 'PNG'), (40, 48, 3, 'uint8')),
    'png-palette-transparent': (lambda: _pil(Image.fromarray(RGB).convert('P'), 'PNG',
                                             transparency=0), (40, 48, 4, 'uint8')),
    'png-rgb-colour-key': (lambda: _pil(Image.fromarray(RGB), 'PNG', transparency=(0, 0, 0)),
                           (40, 48, 4, 'uint8')),
    'png-gray-alpha-8': (lambda: hostile.raw_png(np.dstack([GRAY, GRAY]), 4),
                         (40, 48, 2, 'uint8')),
    'png-gray-alpha-16': (lambda: hostile.raw_png(np.dstack([GRAY, GRAY]).astype(np.uint16), 4),
                          (40, 48, 2, 'uint16')),
    'jpeg-gray': (lambda: _pil(Image.fromarray(GRAY), 'JPEG'), (40, 48, 1, 'uint8')),
    'jpeg-rgb': (lambda: _cv('.jpg', RGB), (40, 48, 3, 'uint8')),
    'jpeg-progressive': (lambda: _pil(Image.fromarray(RGB), 'JPEG', progressive=True),
                         (40, 48, 3, 'uint8')),
    'jpeg-cmyk': (lambda: _pil(Image.fromarray(RGB).convert('CMYK'), 'JPEG'),
                  (40, 48, 3, 'uint8')),
    'jpeg-exif-rotated': (_jpeg_rotated, (48, 40, 3, 'uint8')),
    'tiff-gray-8': (lambda: _cv('.tif', GRAY), (40, 48, 1, 'uint8')),
    'tiff-gray-16': (lambda: _cv('.tif', GRAY.astype(np.uint16)), (40, 48, 1, 'uint16')),
    'tiff-rgb-8': (lambda: _cv('.tif', RGB), (40, 48, 3, 'uint8')),
    'tiff-rgba-16': (lambda: _cv('.tif', np.dstack([RGB, RGB[..., :1]]).astype(np.uint16)),
                     (40, 48, 4, 'uint16')),
    'tiff-big-endian': (lambda: hostile.gray_tiff(GRAY, '>'), (40, 48, 1, 'uint8')),
    'tiff-bigtiff': (lambda: hostile.gray_tiff(GRAY, '<', big=True), (40, 48, 1, 'uint8')),
    'tiff-bigtiff-big-endian': (lambda: hostile.gray_tiff(GRAY, '>', big=True),
                                (40, 48, 1, 'uint8')),
    'tiff-palette': (lambda: _pil(Image.fromarray(RGB).convert('P'), 'TIFF'),
                     (40, 48, 3, 'uint8')),
    'tiff-ycbcr-jpeg': (lambda: _pil(Image.fromarray(RGB), 'TIFF', compression='jpeg'),
                        (40, 48, 3, 'uint8')),
    'bmp-1bit': (lambda: _pil(Image.fromarray(GRAY > 128), 'BMP'), (40, 48, 1, 'uint8')),
    'bmp-gray-palette': (lambda: _pil(Image.fromarray(GRAY), 'BMP'), (40, 48, 1, 'uint8')),
    'bmp-colour-palette': (lambda: _pil(Image.fromarray(RGB).convert('P'), 'BMP'),
                           (40, 48, 3, 'uint8')),
    'bmp-24': (lambda: _cv('.bmp', RGB), (40, 48, 3, 'uint8')),
    'bmp-32-no-alpha-mask': (lambda: _pil(_rgba_with_alpha(), 'BMP'), (40, 48, 3, 'uint8')),
    'bmp-32-alpha-mask': (lambda: _cv('.bmp', np.dstack([RGB, GRAY])), (40, 48, 4, 'uint8')),
    'webp-lossy': (lambda: _cv('.webp', RGB), (40, 48, 3, 'uint8')),
    'webp-lossless': (lambda: _pil(Image.fromarray(RGB), 'WEBP', lossless=True),
                      (40, 48, 3, 'uint8')),
    'webp-lossless-alpha': (lambda: _pil(_rgba_with_alpha(), 'WEBP', lossless=True),
                            (40, 48, 4, 'uint8')),
    'webp-lossy-alpha': (lambda: _pil(_rgba_with_alpha(), 'WEBP'), (40, 48, 4, 'uint8')),
}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_probe_declares_what_the_decoder_returns(tmp_path, variant):
    make, (height, width, channels, dtype) = VARIANTS[variant]
    path = tmp_path / variant
    path.write_bytes(make())
    info = probe_image(path)
    assert (info.height, info.width, info.channels, info.dtype.name) == \
        (height, width, channels, dtype)
    assert info.format == variant.split('-')[0].upper().replace('WEBP', 'WebP')
    image = read_image(path)
    assert image.shape[:2] == (height, width) and image.dtype == dtype
    assert (1 if image.ndim == 2 else image.shape[2]) == channels


def _with_corrupt_ihdr_crc() -> bytes:
    encoded = bytearray(_cv('.png', RGB))
    encoded[29] ^= 1  # the last byte of the IHDR CRC
    return bytes(encoded)


def _jpeg_height_zero() -> bytes:
    encoded = bytearray(_cv('.jpg', RGB))
    frame = encoded.index(b'\xff\xc0')
    encoded[frame + 5:frame + 7] = b'\x00\x00'  # height 0: to be given by a DNL marker
    return bytes(encoded)


@pytest.mark.parametrize('make, message', [
    (lambda: _pil(Image.fromarray(GRAY), 'PNG', transparency=0),
     'gray PNG with a transparent colour key'),
    (lambda: _pil(Image.fromarray(np.dstack([GRAY, GRAY]), 'LA'), 'TIFF'),
     'gray \\+ alpha TIFF is not supported'),
    (lambda: _pil(Image.fromarray(RGB).convert('CMYK'), 'TIFF'), 'CMYK TIFF is not supported'),
    (lambda: _pil(Image.fromarray(RGB), 'GIF'), 'GIF files are not supported'),
    (lambda: _pil(Image.fromarray(RGB), 'PNG', save_all=True,
                  append_images=[Image.fromarray(255 - RGB)]),
     'animated PNG is not supported \\(only its first frame would be upscaled\\)'),
    (lambda: _pil(Image.fromarray(RGB), 'TIFF', save_all=True,
                  append_images=[Image.fromarray(255 - RGB)]),
     'multi-page TIFF is not supported \\(only its first page would be upscaled\\)'),
    (_with_corrupt_ihdr_crc, 'corrupt PNG file \\(the IHDR header chunk fails its CRC check\\)'),
    (_jpeg_height_zero, 'JPEG files that give the height after the image data '
                        '\\(DNL marker\\)'),
    (lambda: _cv('.png', RGB)[:20], 'truncated file \\(it ends inside the image header\\)'),
])
def test_refused_from_the_header(tmp_path, make, message):
    path = tmp_path / 'image'
    path.write_bytes(make())
    with pytest.raises(ImageError, match=f'^{path}: {message}'):
        probe_image(path)
    with pytest.raises(ImageError, match=f'^{path}: {message}'):
        read_image(path)


def test_decoder_disagreeing_with_the_header_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / 'rgb.png'
    path.write_bytes(_cv('.png', RGB))
    real_probe = image_module.probe
    monkeypatch.setattr(image_module, 'probe', lambda file: real_probe(file)._replace(channels=4))
    with pytest.raises(ImageError, match=r'the decoder returned 48x40 \(width x height\), 3 '
                                         r'channel\(s\) of uint8 but the header declares 48x40 '
                                         r'\(width x height\), 4 channel'):
        read_image(path)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_gray_alpha_png_reads_as_two_channels(tmp_path, dtype):
    pixels = hostile.gray_alpha_png(tmp_path / 'la.png', dtype)
    image = read_image(tmp_path / 'la.png')
    assert image.shape == pixels.shape and image.dtype == dtype
    np.testing.assert_array_equal(image, pixels)


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16])
def test_gray_alpha_written_to_png_stays_gray_alpha(tmp_path, dtype):
    pixels = hostile.gray_alpha_png(tmp_path / 'source.png', dtype)
    write_image(tmp_path / 'out.png', pixels)
    header = (tmp_path / 'out.png').read_bytes()[16:26]
    assert header[8:10] == bytes([8 * np.dtype(dtype).itemsize, 4])  # bit depth, colour type
    np.testing.assert_array_equal(read_image(tmp_path / 'out.png'), pixels)
    if dtype == np.uint8:  # a second decoder agrees
        with Image.open(tmp_path / 'out.png') as independent:
            assert independent.mode == 'LA'
            np.testing.assert_array_equal(np.asarray(independent), pixels)


@pytest.mark.parametrize('suffix', ['.tif', '.bmp'])
def test_gray_alpha_in_formats_without_it_is_stored_as_rgba(tmp_path, suffix):
    pixels = hostile.gray_alpha_png(tmp_path / 'source.png')
    write_image(tmp_path / f'out{suffix}', pixels)
    image = read_image(tmp_path / f'out{suffix}')
    np.testing.assert_array_equal(image, pixels[..., [0, 0, 0, 1]])


def test_decoder_messages_never_reach_stderr(tmp_path, capfd):
    path = hostile.jpeg_cut_with_end_marker(tmp_path / 'cut.jpg')
    with pytest.raises(ImageError, match='Corrupt JPEG data'):
        read_image(path)
    with pytest.raises(ImageError, match='CRC error'):
        read_image(hostile.png_bad_crc(tmp_path / 'crc.png'))
    os.write(2, b'stderr is back\n')
    assert capfd.readouterr().err == 'stderr is back\n'


def _fails_without_blocking(call: Callable[[], None], fifo: Path) -> str:
    """Run ``call`` in a thread; if it blocks on the FIFO, release it and fail the test."""
    outcome = {}

    def target():
        try:
            call()
            outcome['message'] = None
        except ImageError as err:
            outcome['message'] = str(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer unblocks the reader
        thread.join(20)
        pytest.fail('reading blocked on a FIFO')
    assert outcome['message'] is not None, 'a FIFO was read as an image'
    return outcome['message']


def test_fifo_is_refused_without_opening_it(tmp_path):
    fifo = hostile.fifo(tmp_path / 'pipe.png')
    message = _fails_without_blocking(lambda: read_image(fifo), fifo)
    assert message == f'{fifo}: is a FIFO (named pipe), not an image file'


def test_fifo_swapped_in_after_the_check_is_refused_on_the_descriptor(tmp_path, monkeypatch):
    fifo = hostile.fifo(tmp_path / 'pipe.png')
    regular = tmp_path / 'regular.png'
    regular.write_bytes(_cv('.png', RGB))
    real_stat = os.stat
    # The check sees a regular file; by the time of the open, the name is a FIFO.
    monkeypatch.setattr(os, 'stat', lambda path, *args, **kwargs: real_stat(
        regular if Path(path) == fifo else path, *args, **kwargs))
    message = _fails_without_blocking(lambda: read_image(fifo), fifo)
    assert message == f'{fifo}: is a FIFO (named pipe), not an image file'


def test_file_over_the_byte_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / 'big.png'
    path.write_bytes(_cv('.png', RGB))
    size = path.stat().st_size
    with pytest.raises(ImageError, match=f'^{path}: file of {size} bytes is over the limit of '
                                         f'{size - 1} bytes \\(not read\\)$'):
        read_image(path, max_bytes=size - 1)
    assert read_image(path, max_bytes=size).shape == RGB.shape


def test_file_that_grows_after_the_check_is_still_bounded(tmp_path, monkeypatch):
    path = tmp_path / 'growing.png'
    path.write_bytes(_cv('.png', RGB))
    limit = path.stat().st_size + 10
    real_probe = image_module.probe

    def probe_then_grow(file):
        info = real_probe(file)
        with open(path, 'ab') as appender:
            appender.write(bytes(100))
        return info

    monkeypatch.setattr(image_module, 'probe', probe_then_grow)
    with pytest.raises(ImageError, match=f'^{path}: file holds more than the limit of {limit} '
                                         'bytes$'):
        read_image(path, max_bytes=limit)


def test_pixel_limit_applies_to_the_header(tmp_path):
    path = hostile.png_bomb(tmp_path / 'bomb.png', 3000, 2000)
    with pytest.raises(ImageError, match=f'^{path}: 3000x2000 pixels \\(width x height, 6 '
                                         'megapixels\\) is over the limit of 5.9 megapixels '
                                         '\\(not decoded\\)$'):
        read_image(path, max_pixels=5_900_000)
    assert read_image(path, max_pixels=6_000_000).shape == (2000, 3000, 3)


def test_tiff_tiles_larger_than_the_image_are_refused(tmp_path):
    path = hostile.tiff_tile_bomb(tmp_path / 'tiles.tif', side=16, tile=4096)
    with pytest.raises(ImageError, match='TIFF tiles of 4096x4096 pixels are larger than the '
                                         '16x16 image'):
        read_image(path)


# The hostile corpus: (name, make(folder) -> path, read_image keyword arguments, expected text)
CORPUS = [
    ('bomb 8-bit 400 MP', lambda d: hostile.png_bomb(d / 'bomb8.png', 20000, 20000), {},
     'is over the limit of 200 megapixels'),
    ('bomb 16-bit 32767x32767', lambda d: hostile.png_bomb(d / 'bomb16.png', 32767, 32767, 16),
     {}, '32767x32767 pixels'),
    ('bomb under a small limit', lambda d: hostile.png_bomb(d / 'bomb.png', 4000, 3000),
     {'max_pixels': 1_000_000}, 'is over the limit of 1 megapixels'),
    ('/dev/zero', lambda d: hostile.DEV_ZERO, {}, 'is a character device, not an image file'),
    ('sparse 1 TiB', lambda d: hostile.sparse_file(d / 'huge.png', 2**40), {},
     'file of 1048576.0 MiB is over the limit of 256.0 MiB'),
    ('directory', lambda d: d, {}, 'is a directory, not an image file'),
    ('JPEG half + end marker', lambda d: hostile.jpeg_cut_with_end_marker(d / 'cut.jpg'), {},
     'truncated or corrupt JPEG file (Corrupt JPEG data: premature end of data segment)'),
    ('PNG bad CRC', lambda d: hostile.png_bad_crc(d / 'crc.png'), {},
     'truncated or corrupt PNG file (libpng error: IDAT: CRC error)'),
    ('PNG bad zlib', lambda d: hostile.png_bad_zlib(d / 'zlib.png'), {},
     'truncated or corrupt PNG file'),
    ('hostile name', lambda d: hostile.png_bad_crc(d / hostile.HOSTILE_NAME), {},
     'truncated or corrupt PNG file'),
]

CHILD = '''
import json, resource, sys
from mmdeploy_srcnn.utils.image import ImageError, read_image

def status_kb(field):
    with open('/proc/self/status') as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ':'))

def peak_mb():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's)
    return status_kb('VmHWM') / 1024

vm = status_kb('VmSize') * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, vm + 2**30))
results = []
baseline = peak_mb()
for path, options in json.loads(sys.argv[1]):
    try:
        image = read_image(path, **options)
        outcome = ('decoded', str(image.shape))
    except Exception as err:
        outcome = (type(err).__name__, str(err))
    results.append([*outcome, peak_mb() - baseline])
print(json.dumps(results))
'''


def test_hostile_corpus_is_refused_in_one_line_with_bounded_memory(tmp_path):
    paths = [make(tmp_path) for _, make, _, _ in CORPUS]
    # Last, a control: a 100-megapixel image that is decoded, so the memory bound is shown
    # to be able to fail (the peak only grows, so it must come after the refusals).
    control = hostile.png_bomb(tmp_path / 'control.png', 10000, 10000)
    requests = [[os.fsdecode(path), options] for path, (_, _, options, _) in zip(paths, CORPUS)]
    child = subprocess.run([sys.executable, '-c', CHILD,
                            json.dumps(requests + [[str(control), {}]], ensure_ascii=False)],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                           errors='backslashreplace')
    assert child.returncode == 0, child.stderr
    assert child.stderr == ''  # no libpng/libjpeg line, nothing but what the caller prints
    results = json.loads(child.stdout)
    for (name, _, _, expected), path, (kind, message, grown_mb) in zip(CORPUS, paths, results):
        assert kind == 'ImageError', (name, message)
        assert message == f'{printable(path)}: {expected}' or (
            message.startswith(f'{printable(path)}: ') and expected in message), (name, message)
        assert not any(char in message for char in '\n\r\x1b'), (name, message)
        assert grown_mb < MEMORY_BOUND_MB, (name, grown_mb)
    kind, shape, grown_mb = results[-1]
    assert (kind, shape) == ('decoded', '(10000, 10000, 3)')
    assert grown_mb > 250  # 300 MB of pixels: the bound above would have caught a decode
