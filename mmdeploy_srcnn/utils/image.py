"""Image files and pixel values, torch-free (the upscaling app and the deploy tool use it).

In memory an image is a numpy array in RGB order (OpenCV's BGR never leaves this module):
``HxW`` gray, ``HxWx2`` gray + alpha, ``HxWx3`` RGB or ``HxWx4`` RGBA, ``uint8`` or
``uint16``. The model works on float32 in [0, 1]; :func:`to_float` and :func:`from_float`
convert, keeping the bit depth.

Reading treats every file as hostile, in this order:

1. Only a regular file is opened (no FIFO, device, socket or folder: each could block forever
   or never end), and it is checked again on the open descriptor, so a FIFO swapped in after
   the first check is refused too. A file over ``max_bytes`` is refused before it is read.
2. The header is parsed (:mod:`.image_header`) and an image over ``max_pixels`` is refused
   before the decoder allocates anything: a small file declaring a huge image costs nothing.
3. OpenCV decodes the bytes while the process's standard error points at a temporary file,
   so what libjpeg or libpng print never reaches the terminal; it is kept for the message
   instead. libjpeg decodes a JPEG with missing or corrupt data (e.g. cut and given a new end
   marker) into grey or garbage rows and only prints a warning: any such warning is an error
   here. PNG data is protected by CRCs and zlib checksums, which libpng enforces.
4. The result must have exactly the size, channels and depth the header declared.

Errors are :class:`ImageError` with a one-line message that starts with the file name
(escaped by :func:`~.fileio.printable`), so a command-line tool can print it as is.
"""
import contextlib
import os
import stat
import struct
import sys
import tempfile
import threading
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Tuple, Union

import cv2
import numpy as np

from .fileio import OutputExistsError, atomic_path, atomic_write, printable
from .image_header import HeaderError, ImageInfo, probe

PathLike = Union[str, os.PathLike]

DEFAULT_MAX_PIXELS = 200_000_000
"""Largest image :func:`read_image` decodes by default (width x height)."""
DEFAULT_MAX_BYTES = 256 * 2**20
"""Largest file :func:`read_image` and :func:`probe_image` read by default."""

# Output formats: suffix -> (stores 16-bit samples, stores an alpha channel).
_WRITE_FORMATS = {
    '.png': (True, True),
    '.tif': (True, True),
    '.tiff': (True, True),
    '.webp': (False, True),
    '.bmp': (False, True),
    '.jpg': (False, False),
    '.jpeg': (False, False),
}
IMAGE_SUFFIXES = tuple(_WRITE_FORMATS)
"""Suffixes the app takes from a folder and can write; reading goes by content, not suffix."""

_FILE_KINDS = ((stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
               (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
               (stat.S_ISSOCK, 'a socket'))
_MAX_DECODER_MESSAGE = 300  # characters of a codec library's message kept for ours
# Decoding redirects the process-wide standard error: one decode at a time.
_DECODER_OUTPUT_LOCK = threading.Lock()


class ImageError(Exception):
    """An image file that cannot be read or written; the message names the file."""


def _describe(status: os.stat_result) -> Optional[str]:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(status.st_mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(status.st_mode)),
                'not a regular file')


def _os_error(name: str, err: OSError) -> ImageError:
    if isinstance(err, FileNotFoundError):
        return ImageError(f'{name}: no such file')
    if isinstance(err, PermissionError):
        return ImageError(f'{name}: permission denied')
    return ImageError(f'{name}: cannot read the file ({printable(err.strerror or str(err))})')


def _size(size: int) -> str:
    return f'{size / 2**20:.1f} MiB' if size >= 2**20 else f'{size} bytes'


def _check_file(name: str, status: os.stat_result, max_bytes: int) -> None:
    kind = _describe(status)
    if kind is not None:
        raise ImageError(f'{name}: is {kind}, not an image file')
    if status.st_size > max_bytes:
        raise ImageError(f'{name}: file of {_size(status.st_size)} is over the limit of '
                         f'{_size(max_bytes)} (not read)')


@contextlib.contextmanager
def _open_regular_file(path: PathLike, max_bytes: int) -> Iterator[BinaryIO]:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``.

    Checked before opening (opening a device or FIFO may block or have effects) and again on
    the open descriptor (``O_NONBLOCK``: opening a FIFO that replaced the file returns at once
    instead of waiting for a writer, and ``fstat`` then refuses it).
    """
    name = printable(path)
    try:
        _check_file(name, os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise _os_error(name, err) from None
    with os.fdopen(fd, 'rb') as file:
        _check_file(name, os.fstat(fd), max_bytes)
        os.set_blocking(fd, True)
        yield file


def _probe(name: str, file: BinaryIO) -> ImageInfo:
    try:
        return probe(file)
    except HeaderError as err:
        raise ImageError(f'{name}: {err}') from None
    except OSError as err:
        raise _os_error(name, err) from None


def probe_image(path: PathLike, max_bytes: int = DEFAULT_MAX_BYTES,
                max_pixels: Optional[int] = None) -> ImageInfo:
    """Size, channels, sample type and format of an image file, from its header only.

    Reads a few hundred bytes whatever the image's size, so a caller can check the size of
    what it will produce (e.g. the input times an upscale factor) before decoding anything.

    Raises:
        ImageError: as :func:`read_image` for everything checked before decoding (the pixel
            limit only when ``max_pixels`` is given).
    """
    name = printable(path)
    with _open_regular_file(path, max_bytes) as file:
        info = _probe(name, file)
    if max_pixels is not None:
        _check_pixels(name, info, max_pixels)
    return info


def _check_pixels(name: str, info: ImageInfo, max_pixels: int) -> None:
    if info.pixels > max_pixels:
        raise ImageError(f'{name}: {info.width}x{info.height} pixels (width x height, '
                         f'{info.pixels / 1e6:.4g} megapixels) is over the limit of '
                         f'{max_pixels / 1e6:g} megapixels (not decoded)')


def _layout(height: int, width: int, channels: int, dtype: np.dtype) -> str:
    return f'{width}x{height} (width x height), {channels} channel(s) of {np.dtype(dtype).name}'


def _decode_quietly(data: bytes, flags: int) -> Tuple[Optional[np.ndarray], str]:
    """``cv2.imdecode`` with standard error captured: ``(image or None, what was printed)``.

    libjpeg, libpng and libtiff print to file descriptor 2 directly, so the capture swaps the
    descriptor itself (Python's ``sys.stderr`` is flushed first). While it lasts, text that
    other threads write to standard error goes to the capture too.
    """
    with _DECODER_OUTPUT_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        try:
            saved: Optional[int] = os.dup(2)
        except OSError:  # standard error is closed: it is closed again afterwards
            saved = None
        os.dup2(sink.fileno(), 2)
        log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
            error = ''
        except cv2.error as err:  # some decoders raise on corrupt data instead of failing
            image, error = None, str(err).strip().splitlines()[-1]
        finally:
            cv2.utils.logging.setLogLevel(log_level)
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
        sink.seek(0)
        printed = sink.read(_MAX_DECODER_MESSAGE).decode('utf-8', 'replace')
    text = '; '.join(line.strip() for line in (printed + '\n' + error).splitlines()
                     if line.strip())
    return image, printable(text[:_MAX_DECODER_MESSAGE])


def read_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Read an image file as ``HxW``, ``HxWx2``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA).

    Pixels are returned as stored: bit depth (uint8 or uint16), gray, gray + alpha and alpha
    are kept, except that JPEGs, which have no alpha, are returned with their EXIF orientation
    applied, because an output written from them carries no EXIF. Formats:
    :data:`~.image_header.READ_FORMATS`, recognised by content.

    Raises:
        ImageError: missing, unreadable, not a regular file, over ``max_bytes``, empty, not a
            supported format, over ``max_pixels`` (checked on the header, before decoding), a
            pixel type other than 8/16-bit, truncated or corrupt (including a JPEG whose data
            the decoder had to make up), or decoded to other than the declared size.
    """
    name = printable(path)
    with _open_regular_file(path, max_bytes) as file:
        info = _probe(name, file)
        _check_pixels(name, info, max_pixels)
        if info.dtype not in (np.uint8, np.uint16):
            raise ImageError(f'{name}: unsupported pixel type {info.dtype.name} '
                             '(8-bit and 16-bit images are supported)')
        file.seek(0)
        try:
            data = file.read(max_bytes + 1)
        except OSError as err:
            raise _os_error(name, err) from None
    if len(data) > max_bytes:  # it grew after the check, or its size is not known (/proc)
        raise ImageError(f'{name}: file holds more than the limit of {_size(max_bytes)}')
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if info.format == 'JPEG' \
        else cv2.IMREAD_UNCHANGED  # JPEG: no alpha to keep, and EXIF orientation is applied
    image, printed = _decode_quietly(data, flags)
    if image is None:
        raise ImageError(f'{name}: truncated or corrupt {info.format} file'
                         + (f' ({printed})' if printed else ''))
    if info.format == 'JPEG' and printed:  # libjpeg filled missing or corrupt data and warned
        raise ImageError(f'{name}: truncated or corrupt JPEG file ({printed})')
    image = _to_rgb_layout(image, info.channels)
    channels = 1 if image.ndim == 2 else image.shape[2]
    declared = ((info.height, info.width), info.channels, info.dtype)
    if (image.shape[:2], channels, image.dtype) != declared:
        raise ImageError(f'{name}: the decoder returned '
                         f'{_layout(*image.shape[:2], channels, image.dtype)} but the header '
                         f'declares {_layout(info.height, info.width, info.channels, info.dtype)}')
    return image


def _to_rgb_layout(image: np.ndarray, declared_channels: int) -> np.ndarray:
    """OpenCV's BGR(A) to this module's RGB(A); gray + alpha, which OpenCV expands to BGRA
    (B = G = R), back to two channels."""
    if image.ndim != 3:
        return image
    if declared_channels == 2 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., [0, 3]])
    code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code, dst=image)  # in place: no second copy of a large image


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack('>I', len(payload)) + kind + payload
            + struct.pack('>I', zlib.crc32(kind + payload)))


def _encode_gray_alpha_png(image: np.ndarray) -> bytes:
    """A PNG of colour type 4 (gray + alpha), which OpenCV's encoder cannot write.

    Every row uses the Sub filter (each byte minus the same byte of the previous pixel), then
    one zlib stream: a minimal, valid encoding.
    """
    height, width = image.shape[:2]
    depth = image.dtype.itemsize * 8
    row_bytes = image.astype(image.dtype.newbyteorder('>')).view(np.uint8).reshape(height, -1)
    pixel_bytes = 2 * image.dtype.itemsize
    filtered = row_bytes.copy()
    filtered[:, pixel_bytes:] -= row_bytes[:, :-pixel_bytes]  # uint8 arithmetic wraps, as PNG's
    rows = np.hstack([np.ones((height, 1), np.uint8), filtered])  # filter type 1 = Sub
    header = struct.pack('>IIBBBBB', width, height, depth, 4, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header)
            + _png_chunk(b'IDAT', zlib.compress(rows.tobytes(), 6)) + _png_chunk(b'IEND', b''))


def _to_bgr_layout(image: np.ndarray, consume: bool) -> np.ndarray:
    """An RGB-layout image in OpenCV's layout (BGR(A); gray + alpha as BGRA with B = G = R);
    ``consume``: the channels may be reordered in ``image`` itself (no copy)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 2:
        # no gray + alpha in these formats: stored as RGBA
        image = np.ascontiguousarray(image[..., [0, 0, 0, 1]])
        channels, consume = 4, True
    if channels in (3, 4):
        code = cv2.COLOR_RGBA2BGRA if channels == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code, dst=image if consume else None)
    return image


def _write_with_opencv(name: str, path: PathLike, image: np.ndarray, overwrite: bool) -> None:
    """``cv2.imwrite`` into a temporary name, then publish: the file is encoded straight to
    disk (no second copy of a large output in memory)."""
    with atomic_path(path, overwrite=overwrite) as temporary:
        try:
            ok = cv2.imwrite(str(temporary), image)
        except cv2.error as err:
            raise ImageError(f'{name}: OpenCV cannot encode this image as '
                             f'{Path(path).suffix} ({printable(str(err).strip().splitlines()[-1])})'
                             ) from None
        if not ok:
            raise ImageError(f'{name}: OpenCV failed to write the image as {Path(path).suffix}')


def write_image(path: PathLike, image: np.ndarray, *, overwrite: bool = True,
                consume: bool = False) -> None:
    """Write a gray, gray + alpha, RGB or RGBA uint8/uint16 image; the suffix picks the format.

    The file appears complete or not at all (encoded into a temporary file, then published by
    :func:`~.fileio.atomic_path`). With ``overwrite=False`` an existing
    file, including one that appeared while this image was being made, is left untouched and
    the call fails. A 16-bit image written to an 8-bit-only format (JPEG, WebP, BMP) is
    rounded to 8 bits. Gray + alpha stays gray + alpha in PNG; TIFF, WebP and BMP store it as
    RGBA with R = G = B. An alpha channel that the format cannot store is an error rather than
    silently dropped, because the hidden colours of transparent pixels would show.
    ``consume=True`` gives ``image`` up: its channels may be reordered in place, which saves
    a copy of the whole image (what a large output needs).

    Raises:
        ImageError: unsupported suffix, pixel type or layout, alpha for a format without it,
            an existing file with ``overwrite=False``, or an encoding/writing failure.
    """
    name = printable(path)
    suffix = Path(path).suffix.lower()
    if suffix not in _WRITE_FORMATS:
        raise ImageError(f'{name}: cannot write {printable(suffix) or "files without a suffix"} '
                         f'(use one of {", ".join(IMAGE_SUFFIXES)})')
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(f'{name}: cannot write pixel type {image.dtype} (uint8 or uint16 only)')
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise ImageError(f'{name}: cannot write an array of shape {image.shape} '
                         '(expected HxW, HxWx2, HxWx3 or HxWx4)')
    keeps_16_bit, keeps_alpha = _WRITE_FORMATS[suffix]
    if channels in (2, 4) and not keeps_alpha:
        raise ImageError(f'{name}: {suffix} cannot store the alpha channel '
                         '(write .png, .tif or .webp instead)')
    if image.dtype == np.uint16 and not keeps_16_bit:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    consume = consume and image.flags.writeable and image.flags.c_contiguous
    try:
        if image.ndim == 3 and image.shape[2] == 2 and suffix == '.png':
            with atomic_write(path, 'wb', overwrite=overwrite) as file:
                file.write(_encode_gray_alpha_png(image))  # OpenCV cannot write gray + alpha
        else:
            _write_with_opencv(name, path, _to_bgr_layout(image, consume), overwrite)
    except OutputExistsError:
        raise ImageError(f'{name}: output file exists, not replaced (overwriting is off)') \
            from None
    except OSError as err:
        raise ImageError(f'{name}: cannot write the file ({printable(err.strerror or str(err))})') \
            from None


def to_float(image: np.ndarray) -> np.ndarray:
    """Pixel values as float32 in [0, 1]: uint8 / 255, uint16 / 65535.

    Float input is taken to be in [0, 1] already and returned as float32.
    """
    if image.dtype in (np.uint8, np.uint16):
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise TypeError(f'unsupported pixel type {image.dtype} (uint8, uint16 or float)')


def from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float pixels in [0, 1] back to ``dtype``: clipped to [0, 1], then rounded to nearest.

    For a float ``dtype`` the values are only clipped.
    """
    dtype = np.dtype(dtype)
    clipped = np.clip(image, 0.0, 1.0)
    if dtype in (np.uint8, np.uint16):
        scaled = clipped * np.float32(np.iinfo(dtype).max)
        return np.rint(scaled, out=scaled).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return clipped.astype(dtype, copy=False)
    raise TypeError(f'unsupported pixel type {dtype} (uint8, uint16 or float)')
