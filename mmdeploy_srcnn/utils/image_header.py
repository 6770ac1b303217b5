"""Image size, layout and bit depth from a file's header, read before any pixel is decoded.

A decoder allocates its output from the size the header declares, so a small file can ask for
gigabytes (a decompression bomb). Reading the header first lets :mod:`.image` refuse such a
file at the cost of a few hundred bytes of reading.

Why our own parser rather than a library: OpenCV, which decodes, has no header-only call in
Python. Pillow's lazy ``Image.open`` reads only the header, but it enforces its own
decompression-bomb limit through a module-wide setting (a caller's larger limit would mean
changing state that every other Pillow user in the process shares), it accepts a different set
of format variants than OpenCV (a probe by one library would refuse or misdescribe files the
other decodes), and it would be a new dependency of the torch-free app. The five formats read
here keep their size at fixed, documented places: PNG's IHDR chunk, JPEG's SOFn frame header
(and the EXIF orientation that OpenCV applies), TIFF's first image directory, the BMP info
header and WebP's VP8/VP8L/VP8X chunk. Each parser seeks over everything else and stops at the
pixel data. :func:`~.image.read_image` then checks that the decoder returned exactly the
declared size, channels and depth, so a disagreement between this parser and the decoder is
an error, never a silent difference.
"""
import io
import struct
import zlib
from typing import BinaryIO, Dict, NamedTuple, Set, Tuple

import numpy as np

READ_FORMATS = ('PNG', 'JPEG', 'TIFF', 'BMP', 'WebP')
"""Formats whose header is probed here, and so the formats that can be read."""

MAX_SIDE = 2**31 - 1
"""Largest width or height accepted from any header (OpenCV's matrices index with int32)."""

# Chunks or segments walked before the pixel data. Real files have tens; the bound keeps a
# file made of millions of tiny chunks from costing minutes of parsing.
_MAX_SEGMENTS = 4096

# Leading bytes of formats that are recognised but not read, for a precise refusal.
_OTHER_SIGNATURES = {
    b'GIF87a': 'GIF',
    b'GIF89a': 'GIF',
    b'\x00\x00\x00\x0cjP  ': 'JPEG 2000',
    b'\xff\x4f\xff\x51': 'JPEG 2000',
    b'P1': 'PBM', b'P4': 'PBM', b'P2': 'PGM', b'P5': 'PGM', b'P3': 'PPM', b'P6': 'PPM',
    b'v/1\x01': 'OpenEXR',
    b'#?RADIANCE': 'Radiance HDR',
}


class HeaderError(ValueError):
    """A header that is malformed, declares an unsupported variant, or is not an image's."""


class ImageInfo(NamedTuple):
    """What a file declares, in the layout :func:`~.image.read_image` returns.

    ``channels`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); ``dtype`` is the numpy
    type of the decoded samples (uint8 for 1 to 8 bits, uint16 for 16 bits, or a type that
    reading refuses, such as float32); ``height`` and ``width`` are those of the upright image
    (JPEG EXIF orientation applied).
    """

    height: int
    width: int
    channels: int
    dtype: np.dtype
    format: str

    @property
    def pixels(self) -> int:
        return self.height * self.width


def probe(file: BinaryIO) -> ImageInfo:
    """Read the header of an image file opened in binary mode (it is read from offset 0).

    Raises:
        HeaderError: empty, not one of :data:`READ_FORMATS`, a malformed or truncated header, a
            size of 0 or over :data:`MAX_SIDE`, or a variant the decoder would misread.
    """
    file.seek(0)
    head = file.read(16)
    if not head:
        raise HeaderError('empty file (0 bytes)')
    if head.startswith(b'\x89PNG\r\n\x1a\n'):
        info = _probe_png(file)
    elif head.startswith(b'\xff\xd8'):
        info = _probe_jpeg(file)
    elif head[:4] in (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+'):
        info = _probe_tiff(file)
    elif head.startswith(b'BM'):
        info = _probe_bmp(file)
    elif head.startswith(b'RIFF') and head[8:12] == b'WEBP':
        info = _probe_webp(file)
    else:
        other = next((name for magic, name in _OTHER_SIGNATURES.items()
                      if head.startswith(magic)), None)
        if other is None:
            raise HeaderError('not an image (unknown file format)')
        raise HeaderError(f'{other} files are not supported (readable: {", ".join(READ_FORMATS)})')
    if not (0 < info.height <= MAX_SIDE and 0 < info.width <= MAX_SIDE):
        raise HeaderError(f'invalid {info.format} header: it declares '
                          f'{info.width}x{info.height} pixels (width x height)')
    return info


def _read(file: BinaryIO, size: int) -> bytes:
    data = file.read(size)
    if len(data) < size:
        raise HeaderError('truncated file (it ends inside the image header)')
    return data


# ---------------------------------------------------------------------------------------- PNG
# colour type -> (channels as decoded, allowed bit depths)
_PNG_COLOR_TYPES = {0: (1, (1, 2, 4, 8, 16)), 2: (3, (8, 16)), 3: (3, (1, 2, 4, 8)),
                    4: (2, (8, 16)), 6: (4, (8, 16))}


def _probe_png(file: BinaryIO) -> ImageInfo:
    file.seek(8)
    length, kind = struct.unpack('>I4s', _read(file, 8))
    if (length, kind) != (13, b'IHDR'):
        raise HeaderError('corrupt PNG file (no IHDR header chunk)')
    header = _read(file, 13)
    if struct.unpack('>I', _read(file, 4))[0] != zlib.crc32(b'IHDR' + header):
        raise HeaderError('corrupt PNG file (the IHDR header chunk fails its CRC check)')
    width, height, depth, color, compression, filtering, interlace = \
        struct.unpack('>IIBBBBB', header)
    channels, depths = _PNG_COLOR_TYPES.get(color, (0, ()))
    if depth not in depths or compression or filtering or interlace > 1:
        raise HeaderError(f'corrupt PNG file (invalid header: bit depth {depth}, '
                          f'colour type {color})')
    chunks = _png_chunks_before_data(file)
    if b'acTL' in chunks:
        raise HeaderError('animated PNG is not supported (only its first frame would be '
                          'upscaled)')
    if b'tRNS' in chunks:
        if color == 0:
            raise HeaderError('gray PNG with a transparent colour key (tRNS chunk) is not '
                              'supported: the decoder would drop the transparency')
        if color in (2, 3):
            channels = 4  # the decoder turns the colour key or palette alpha into an alpha channel
    return ImageInfo(height, width, channels, np.dtype(np.uint16 if depth == 16 else np.uint8),
                     'PNG')


def _png_chunks_before_data(file: BinaryIO) -> Set[bytes]:
    """The kinds of the chunks before the image data (the file is positioned after IHDR):
    tRNS (transparency) and acTL (animation) must come there."""
    kinds = set()
    for _ in range(_MAX_SEGMENTS):
        length, kind = struct.unpack('>I4s', _read(file, 8))
        if kind in (b'IDAT', b'IEND'):
            return kinds
        kinds.add(kind)
        file.seek(length + 4, io.SEEK_CUR)  # the data and its CRC
    raise HeaderError(f'corrupt PNG file (over {_MAX_SEGMENTS} chunks before the image data)')


# --------------------------------------------------------------------------------------- JPEG
# SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8)])
_JPEG_COMPONENTS_TO_CHANNELS = {1: 1, 3: 3, 4: 3}  # gray, YCbCr/RGB, CMYK/YCCK -> RGB


def _probe_jpeg(file: BinaryIO) -> ImageInfo:
    """Walk the segments up to the start of the scan: the frame header and EXIF orientation."""
    file.seek(2)
    frame = None
    orientation = 1
    for _ in range(_MAX_SEGMENTS):
        prefix = _read(file, 2)
        if prefix[0] != 0xFF:
            raise HeaderError('corrupt JPEG file (a segment does not start with a marker)')
        marker = prefix[1]
        while marker == 0xFF:  # fill bytes may precede a marker
            marker = _read(file, 1)[0]
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD8, 0xD9):
            raise HeaderError('corrupt JPEG file (no image data after the header)')
        if marker == 0xDA:  # start of scan: the header is over
            break
        length = struct.unpack('>H', _read(file, 2))[0]
        if length < 2:
            raise HeaderError('corrupt JPEG file (a segment has an invalid length)')
        if marker in _JPEG_FRAME_MARKERS:
            if frame is not None:
                raise HeaderError('corrupt JPEG file (two frame headers)')
            if length < 8:
                raise HeaderError('corrupt JPEG file (short frame header)')
            frame = struct.unpack('>BHHB', _read(file, 6))
            file.seek(length - 8, io.SEEK_CUR)
        elif marker == 0xE1 and orientation == 1:  # APP1, which holds EXIF
            payload = _read(file, length - 2)
            if payload.startswith(b'Exif\x00\x00'):
                orientation = _exif_orientation(payload[6:])
        else:
            file.seek(length - 2, io.SEEK_CUR)
    else:
        raise HeaderError(f'corrupt JPEG file (over {_MAX_SEGMENTS} segments before the '
                          'image data)')
    if frame is None:
        raise HeaderError('corrupt JPEG file (no frame header before the image data)')
    precision, height, width, components = frame
    if height == 0:
        raise HeaderError('JPEG files that give the height after the image data (DNL marker) '
                          'are not supported')
    if components not in _JPEG_COMPONENTS_TO_CHANNELS:
        raise HeaderError(f'JPEG with {components} colour components is not supported')
    if orientation in (5, 6, 7, 8):  # rotated by 90 degrees when shown upright
        height, width = width, height
    return ImageInfo(height, width, _JPEG_COMPONENTS_TO_CHANNELS[components],
                     np.dtype(np.uint8 if precision <= 8 else np.uint16), 'JPEG')


def _exif_orientation(tiff_data: bytes) -> int:
    """The EXIF Orientation tag (1..8); 1 when absent or unreadable, as decoders treat it."""
    try:
        endian, big, offset = _tiff_byte_order(io.BytesIO(tiff_data))
        tags, _ = _read_ifd(io.BytesIO(tiff_data), endian, big, offset, frozenset([0x0112]))
    except HeaderError:
        return 1
    value = tags.get(0x0112, (1,))[0]
    return value if 1 <= value <= 8 else 1


# --------------------------------------------------------------------------------------- TIFF
_TIFF_VALUE_FORMATS = {1: 'B', 3: 'H', 4: 'I', 16: 'Q'}  # BYTE, SHORT, LONG, LONG8
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_PHOTOMETRIC = 256, 257, 258, 262
_TIFF_SAMPLES, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH, _TIFF_SAMPLE_FORMAT = 277, 322, 323, 339
_TIFF_TAGS = frozenset([_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_PHOTOMETRIC, _TIFF_SAMPLES,
                        _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH, _TIFF_SAMPLE_FORMAT])
# (sample format, bits) -> numpy type; sample format 1 = unsigned, 2 = signed, 3 = float.
_TIFF_DTYPES = {(1, 1): np.uint8, (1, 2): np.uint8, (1, 4): np.uint8, (1, 8): np.uint8,
                (1, 16): np.uint16, (1, 32): np.uint32, (2, 8): np.int8, (2, 16): np.int16,
                (2, 32): np.int32, (3, 16): np.float16, (3, 32): np.float32,
                (3, 64): np.float64}


def _tiff_byte_order(file: BinaryIO) -> Tuple[str, bool, int]:
    """``(struct byte order, is BigTIFF, offset of the first directory)``."""
    order = _read(file, 2)
    if order not in (b'II', b'MM'):
        raise HeaderError('corrupt TIFF file (invalid byte order)')
    endian = '<' if order == b'II' else '>'
    magic = struct.unpack(endian + 'H', _read(file, 2))[0]
    if magic == 42:
        return endian, False, struct.unpack(endian + 'I', _read(file, 4))[0]
    if magic == 43:
        offset_size, _, offset = struct.unpack(endian + 'HHQ', _read(file, 12))
        if offset_size == 8:
            return endian, True, offset
    raise HeaderError('corrupt TIFF file (invalid header)')


def _read_ifd(file: BinaryIO, endian: str, big: bool, offset: int,
              wanted: frozenset) -> Tuple[Dict[int, Tuple[int, ...]], int]:
    """The integer values of the ``wanted`` tags of the image directory at ``offset``, and the
    offset of the next directory (0: this is the last, or the file ends before saying)."""
    count_format, entry_format, entry_size = ('Q', 'HHQ8s', 20) if big else ('H', 'HHI4s', 12)
    offset_format = endian + ('Q' if big else 'I')
    file.seek(offset)
    count = struct.unpack(endian + count_format, _read(file, struct.calcsize(count_format)))[0]
    if count > 0xFFFF:
        raise HeaderError('corrupt TIFF file (image directory too long)')
    entries = _read(file, count * entry_size)
    after = file.read(struct.calcsize(offset_format))
    next_offset = struct.unpack(offset_format, after)[0] \
        if len(after) == struct.calcsize(offset_format) else 0
    tags = {}
    for index in range(count):
        tag, kind, number, field = struct.unpack_from(endian + entry_format, entries,
                                                      index * entry_size)
        if tag not in wanted or kind not in _TIFF_VALUE_FORMATS:
            continue
        value_format = f'{endian}{number}{_TIFF_VALUE_FORMATS[kind]}'
        size = struct.calcsize(value_format)
        if number > 64:  # the tags read here hold one value per sample at most
            raise HeaderError(f'corrupt TIFF file (tag {tag} has {number} values)')
        if size > len(field):  # stored elsewhere; the field holds its offset
            file.seek(struct.unpack(endian + ('Q' if big else 'I'), field)[0])
            field = _read(file, size)
        tags[tag] = struct.unpack_from(value_format, field)
    return tags, next_offset


def _probe_tiff(file: BinaryIO) -> ImageInfo:
    """The first image directory, which is the one OpenCV decodes."""
    file.seek(0)
    endian, big, offset = _tiff_byte_order(file)
    tags, next_offset = _read_ifd(file, endian, big, offset, _TIFF_TAGS)
    if next_offset:
        raise HeaderError('multi-page TIFF is not supported (only its first page would be '
                          'upscaled)')
    if _TIFF_WIDTH not in tags or _TIFF_LENGTH not in tags:
        raise HeaderError('corrupt TIFF file (no image width or length)')
    width, height = tags[_TIFF_WIDTH][0], tags[_TIFF_LENGTH][0]
    samples = tags.get(_TIFF_SAMPLES, (1,))[0]
    bits = set(tags.get(_TIFF_BITS, (1,)))
    sample_format = tags.get(_TIFF_SAMPLE_FORMAT, (1,))[0]
    dtype = _TIFF_DTYPES.get((sample_format, bits.pop())) if len(bits) == 1 else None
    if dtype is None:
        raise HeaderError(f'TIFF sample type (format {sample_format}, bits '
                          f'{tags.get(_TIFF_BITS)}) is not supported')
    photometric = tags.get(_TIFF_PHOTOMETRIC, (None,))[0]
    channels = _tiff_channels(photometric, samples)
    if _TIFF_TILE_WIDTH in tags and _TIFF_TILE_LENGTH in tags:
        # The decoder holds one tile at a time; tiles may be declared larger than the image.
        tile_width, tile_length = tags[_TIFF_TILE_WIDTH][0], tags[_TIFF_TILE_LENGTH][0]
        if tile_width * tile_length > max(width * height, 1 << 20):
            raise HeaderError(f'TIFF tiles of {tile_width}x{tile_length} pixels are larger '
                              f'than the {width}x{height} image')
    return ImageInfo(height, width, channels, np.dtype(dtype), 'TIFF')


def _tiff_channels(photometric: int, samples: int) -> int:
    """Channels as decoded, for the colour models OpenCV decodes faithfully."""
    if photometric in (0, 1) and samples == 1:  # gray (white or black is zero)
        return 1
    if photometric == 2 and samples in (3, 4):  # RGB, RGBA
        return samples
    if photometric == 3 and samples == 1:  # palette -> RGB
        return 3
    if photometric == 6 and samples == 3:  # YCbCr -> RGB
        return 3
    if photometric in (0, 1) and samples == 2:
        raise HeaderError('gray + alpha TIFF is not supported: the decoder would drop the '
                          'alpha channel (use PNG)')
    if photometric == 5:
        raise HeaderError('CMYK TIFF is not supported: the decoder would return ink values '
                          'as colours')
    raise HeaderError(f'TIFF colour model {photometric} with {samples} samples per pixel is '
                      'not supported')


# ---------------------------------------------------------------------------------------- BMP
_BMP_RGB, _BMP_RLE8, _BMP_RLE4, _BMP_BITFIELDS = 0, 1, 2, 3
_BMP_ENCODINGS = {(1, _BMP_RGB), (4, _BMP_RGB), (8, _BMP_RGB), (4, _BMP_RLE4), (8, _BMP_RLE8),
                  (16, _BMP_RGB), (16, _BMP_BITFIELDS), (24, _BMP_RGB), (32, _BMP_RGB),
                  (32, _BMP_BITFIELDS)}


def _probe_bmp(file: BinaryIO) -> ImageInfo:
    file.seek(14)
    header_size = struct.unpack('<I', _read(file, 4))[0]
    if header_size == 12:  # OS/2 core header: 16-bit sizes, 3-byte palette entries
        width, height, _, bits = struct.unpack('<HHHH', _read(file, 8))
        compression, colors_used, entry_size = _BMP_RGB, 0, 3
    elif 40 <= header_size <= 124:
        width, height, _, bits, compression = struct.unpack('<iiHHI', _read(file, 16))
        colors_used = struct.unpack('<12xI', _read(file, 16))[0]
        entry_size = 4
    else:
        raise HeaderError(f'corrupt BMP file (unknown header size {header_size})')
    if (bits, compression) not in _BMP_ENCODINGS:
        raise HeaderError(f'BMP with {bits} bits per pixel and compression {compression} is '
                          'not supported')
    if bits > 8:  # 32-bit pixels carry alpha only with explicit channel masks
        channels = 4 if (bits, compression) == (32, _BMP_BITFIELDS) else 3
    else:  # a palette of grays decodes to one channel
        if not 0 <= colors_used <= 256:
            raise HeaderError(f'corrupt BMP file ({colors_used} palette colours)')
        file.seek(14 + header_size)
        entries = _read(file, (colors_used or 1 << bits) * entry_size)
        gray = all(entries[i] == entries[i + 1] == entries[i + 2]
                   for i in range(0, len(entries), entry_size))
        channels = 1 if gray else 3
    return ImageInfo(abs(height), width, channels, np.dtype(np.uint8), 'BMP')


# --------------------------------------------------------------------------------------- WebP
def _probe_webp(file: BinaryIO) -> ImageInfo:
    file.seek(12)
    kind, _ = struct.unpack('<4sI', _read(file, 8))
    if kind == b'VP8 ':  # lossy: frame tag, start code, 14-bit sizes
        data = _read(file, 10)
        if data[3:6] != b'\x9d\x01\x2a':
            raise HeaderError('corrupt WebP file (invalid VP8 frame header)')
        width, height = (value & 0x3FFF for value in struct.unpack('<HH', data[6:10]))
        return ImageInfo(height, width, 3, np.dtype(np.uint8), 'WebP')
    if kind == b'VP8L':  # lossless: signature byte, then 14 + 14 bits of size - 1, alpha bit
        signature, bits = struct.unpack('<BI', _read(file, 5))
        if signature != 0x2F:
            raise HeaderError('corrupt WebP file (invalid VP8L header)')
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo(height, width, 4 if bits >> 28 & 1 else 3, np.dtype(np.uint8), 'WebP')
    if kind == b'VP8X':  # extended: flags, then 24-bit canvas size - 1
        data = _read(file, 10)
        if data[0] & 0x02:
            raise HeaderError('animated WebP is not supported')
        width = int.from_bytes(data[4:7], 'little') + 1
        height = int.from_bytes(data[7:10], 'little') + 1
        return ImageInfo(height, width, 4 if data[0] & 0x10 else 3, np.dtype(np.uint8), 'WebP')
    raise HeaderError(f'corrupt WebP file (unknown first chunk {kind!r})')
