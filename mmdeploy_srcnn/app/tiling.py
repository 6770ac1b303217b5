"""Tiled inference: bounded memory, same pixels as one run on the whole image.

Memory follows the *output*: an SRCNN run on ONNX Runtime peaks at about 1.8 KB per output
pixel (its 64 + 32 feature maps and the convolutions' work buffers; +0.48 GB for 512 x 512,
+1.7 GB for 1024 x 1024, measured by ``ru_maxrss``), so tiles are planned as about ``tile`` x
``tile`` output pixels, whatever the scale (x1.0001 and x100 alike).

The model is ``Resize(cubic, pytorch_half_pixel)`` followed by convolutions. Cutting the input
into tiles changes four things, and the plan undoes each of them:

1. The sample grid. Resize maps output pixel ``j`` to input coordinate ``(j + 0.5) / s - 0.5``
   relative to the tile, so a tile that starts at input offset ``x0`` samples the global grid
   shifted by ``x0 * s`` output pixels. It lines up only where ``x0 * s`` is an integer
   (any ``x0`` for integer scales, even ``x0`` for 2.5, multiples of 4 for 2.25). Tiles
   therefore start only at offsets where ``x0 * s`` is within ``ALIGN_TOLERANCE`` output pixels
   of an integer (a residual shift of 1e-3 px moves values by ~1e-3 x the local gradient).
   The model takes an integer crop and a scale, nothing else, so there is no other way to move
   its grid. For scales whose multiples rarely come close to an integer (2.001 lines up every
   1000 input pixels), aligned offsets are far apart and a tile would have to grow far beyond
   ``tile``: the plan refuses that (:class:`TilingError`) rather than break the memory bound or
   return a result with misaligned seams.
2. Resize clamps its taps at the tile border: each tile reads the input it needs for bicubic
   (1 pixel before, 2 after each sample), with the sample position computed both as the
   engine does (float32) and exactly (float64), so rounding cannot move a tap outside it.
3. A crop too small for the scale to add a pixel is copied, not resampled, by the engines
   (:func:`~mmdeploy_srcnn.utils.sizes.smallest_enlarged_length`: 500 input pixels at
   x1.002): every tile spans at least that many input pixels on an axis that is scaled up.
4. The convolutions zero-pad at the tile border: each tile computes ``halo`` extra output
   pixels on every inner side (SRCNN 9-1-5 sees 4 + 0 + 2 = 6 pixels around each output
   pixel) and they are cropped away. Where a tile touches the image border the padding is the
   same as in the full image, so no halo is needed there. A model with spatial layers
   *before* its resize (a k x k convolution on the input) also reads ``input_halo`` input
   pixels around each tap; the tile reads those too.

Sizes follow the one output-size rule, :func:`~mmdeploy_srcnn.utils.sizes.resized_length`.

What remains is float32 rounding: ONNX Runtime computes sample coordinates in float32, and a
tile's small local coordinates round differently from the whole image's large ones (about 3e-5
on star fields at x3, 1000 px wide; the tiles are the more exact).
"""
import dataclasses
import itertools
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from mmdeploy_srcnn.utils.sizes import resized_length, smallest_enlarged_length

ALIGN_TOLERANCE = 1e-3
"""Largest allowed misalignment (output pixels) between a tile's sample grid and the global one."""
DEFAULT_TILE = 384
"""Default tile side (output pixels): about 0.3 GB per SRCNN model run on ONNX Runtime, which
keeps a 4000x3000 photo at x4 (a 576 MB output) under 1.5 GB in all."""
MIN_TILE = 64
"""Smallest tile side (output pixels): smaller tiles spend most of their time on the overlap."""
MIN_TILE_GROWTH = 256
_BYTES_PER_OUTPUT_PIXEL = 1800  # an SRCNN run on ONNX Runtime (see the module docstring)


def max_tile_side(tile: int) -> int:
    """How far a tile may grow per side (output pixels) to reach an aligned start."""
    return tile + max(tile // 2, MIN_TILE_GROWTH)


class TilingError(ValueError):
    """An image and scale that cannot be tiled exactly within the memory bound."""


_TAPS_BEFORE = 1  # bicubic reads floor(x) - 1 ...
_TAPS_AFTER = 2  # ... to floor(x) + 2


@dataclasses.dataclass(frozen=True)
class Span:
    """One tile along one axis.

    The model runs on input ``[in_start, in_stop)``; its result starts at global output pixel
    ``origin``, and the tile contributes global output pixels ``[out_start, out_stop)``.
    """

    in_start: int
    in_stop: int
    out_start: int
    out_stop: int
    origin: int

    @property
    def local(self) -> slice:
        """Where ``[out_start, out_stop)`` lies in the tile's own model output."""
        return slice(self.out_start - self.origin, self.out_stop - self.origin)


def aligned_starts(length: int, scale: float) -> np.ndarray:
    """Input offsets ``x0 < length`` whose output position ``x0 * scale`` is (nearly) integral.

    ``scale`` is taken as float32, the value the model sees. Always contains 0.
    """
    products = np.arange(length, dtype=np.float64) * float(np.float32(scale))
    return np.flatnonzero(np.abs(products - np.rint(products)) <= ALIGN_TOLERANCE)


def _source_floors(out_index: int, scale: float) -> Tuple[int, int]:
    """``floor`` of the input coordinate output pixel ``out_index`` samples, computed as the
    engine does (float32) and exactly (float64): ``(lowest, highest)`` of the two."""
    exact = int(np.floor((out_index + 0.5) / scale - 0.5))
    half = np.float32(0.5)
    engine = int(np.floor((np.float32(out_index) + half) / np.float32(scale) - half))
    return min(exact, engine), max(exact, engine)


def _first_tap(out_index: int, scale: float) -> int:
    """Lowest input pixel the Resize reads for output pixel ``out_index``."""
    return _source_floors(out_index, scale)[0] - _TAPS_BEFORE


def _last_tap(out_index: int, scale: float) -> int:
    """Highest input pixel the Resize reads for output pixel ``out_index``."""
    return _source_floors(out_index, scale)[1] + _TAPS_AFTER


def _span(out_start: int, out_stop: int, length: int, scale: float, starts: np.ndarray,
          halo: int, input_halo: int, min_crop: int) -> Span:
    """The tile that produces global output ``[out_start, out_stop)`` exactly, at least
    ``min_crop`` input pixels long."""
    out_length = resized_length(length, scale)
    need_start = max(out_start - halo, 0)  # resized pixels the convolutions read
    need_stop = min(out_stop + halo, out_length)
    first = max(_first_tap(need_start, scale) - input_halo, 0)
    last = min(_last_tap(need_stop - 1, scale) + input_halo, length - 1)
    # Latest aligned offset at or before the first tap; x0 = 0 always works, so this ends.
    for in_start in starts[:np.searchsorted(starts, first, side='right')][::-1]:
        in_start = int(in_start)
        origin = round(in_start * scale)
        in_stop = min(max(last + 1, in_start + min_crop), length)
        while in_stop < length and origin + resized_length(in_stop - in_start,
                                                           scale) < need_stop:
            in_stop += 1
        local_stop = origin + resized_length(in_stop - in_start, scale)
        # The tile's zero padding must lie where the image's does or a halo away from what
        # the tile delivers; near the image end that means ending exactly where the full
        # output ends (float32 rounding can make the two sizes differ by one).
        starts_ok = origin <= need_start
        stops_ok = local_stop == out_length if need_stop == out_length \
            else local_stop >= need_stop
        if starts_ok and stops_ok and in_stop - in_start >= min_crop:
            return Span(in_start, in_stop, out_start, out_stop, origin)
    raise AssertionError('unreachable: the tile starting at 0 always fits')


def plan_axis(length: int, scale: float, tile: Optional[int], halo: int,
              input_halo: int = 0) -> List[Span]:
    """Split one axis into spans of about ``tile`` output pixels (``None``: one span).

    ``scale`` is taken as float32. The spans' output ranges cover ``[0, resized_length)``
    without overlap; there is always at least one span. Raises :class:`TilingError` when
    aligned starts are so far apart that a tile would exceed :func:`max_tile_side`.
    """
    scale = float(np.float32(scale))
    out_length = resized_length(length, scale)
    if tile is None or out_length <= tile:
        return [Span(0, length, 0, out_length, 0)]
    if tile < MIN_TILE:
        raise ValueError(f'tile must be at least {MIN_TILE} output pixels, got {tile}')
    # What a tile delivers; the rest is the convolutions' halo and the resize's taps (which
    # cost ``scale`` output pixels per input pixel).
    margin = 2 * halo + int(np.ceil((_TAPS_BEFORE + _TAPS_AFTER + 1 + 2 * input_halo) * scale))
    core = tile - margin
    if core < tile // 2:  # large scales: the taps dominate; let the tile grow, within bounds
        core = max(max_tile_side(tile) - margin, tile // 4)
    min_crop = smallest_enlarged_length(scale) if scale > 1 else 1
    if resized_length(min_crop, scale) > max_tile_side(tile):
        raise TilingError(
            f'at scale {scale:g} a tile must span at least {min_crop} input pixels for the '
            'resize to add a pixel (engines copy a smaller crop instead of resampling it), more '
            f'than a tile of {tile} may grow to: use a tile of at least '
            f'{resized_length(min_crop, scale)}, or no tiling (whole image at once)')
    starts = aligned_starts(length, scale)
    while True:
        spans = [_span(out_start, min(out_start + core, out_length), length, scale, starts, halo,
                       input_halo, min_crop) for out_start in range(0, out_length, core)]
        widest = max(resized_length(span.in_stop - span.in_start, scale) for span in spans)
        if widest <= max_tile_side(tile) or core <= tile // 4:
            break
        core = max(core - int(np.ceil(scale)), tile // 4)  # one input pixel less per tile
    if widest > max_tile_side(tile):
        gap = int(np.diff(starts).max()) if len(starts) > 1 else length
        if gap == 1:  # every offset lines up: the scale itself needs wider tiles
            raise TilingError(
                f'at scale {scale:g} one model run needs more than {max_tile_side(tile)} output '
                f'pixels per side (the resize reads {_TAPS_BEFORE + _TAPS_AFTER + 1} input '
                f'pixels around each sample, {scale:g} output pixels each): use a tile of at '
                f'least {widest} (about {widest * widest * _BYTES_PER_OUTPUT_PIXEL / 1e9:.1f} '
                'GB per run), or no tiling (whole image at once)')
        nearby = round(scale * 4) / 4
        example = f' (e.g. {nearby:g})' if nearby > 1 else ''
        raise TilingError(
            f'scale {scale:g} cannot be tiled exactly within the memory bound: its sample grid '
            f'lines up with the pixels only every {gap} input pixels, so a tile would be '
            f'{widest} output pixels wide (tile {tile}); use a scale that lines up more '
            f'often{example}, or no tiling (whole image at once)')
    return spans


def plan_tiles(image_hw: Sequence[int], scale_hw: Sequence[float], tile: Optional[int],
               halo: int, input_halo: int = 0) -> Tuple[List[Span], List[Span]]:
    """The row spans and the column spans of an image; tiles are their product."""
    return (plan_axis(image_hw[0], scale_hw[0], tile, halo, input_halo),
            plan_axis(image_hw[1], scale_hw[1], tile, halo, input_halo))


def upscale_tiled(process: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                  scale_hw: Sequence[float], tile: Optional[int], halo: int,
                  progress: Optional[Callable[[int, int], None]] = None,
                  out: Optional[np.ndarray] = None, input_halo: int = 0) -> np.ndarray:
    """Run ``process`` tile by tile on ``image`` (H x W x ...) and stitch the results.

    ``process(crop)`` must return the model's output for ``crop`` at ``scale_hw`` (size
    ``resized_length`` of the crop on each axis), in any dtype and channel layout; the result
    has that dtype and layout and the full output size, or is written into ``out`` (a view
    of the right size) when given. ``progress(done, total)`` is called after each tile.
    """
    rows, cols = plan_tiles(image.shape[:2], scale_hw, tile, halo, input_halo)
    total = len(rows) * len(cols)
    for done, (row, col) in enumerate(itertools.product(rows, cols), start=1):
        result = process(image[row.in_start:row.in_stop, col.in_start:col.in_stop])
        if out is None:
            out = np.empty((rows[-1].out_stop, cols[-1].out_stop) + result.shape[2:],
                           result.dtype)
        out[row.out_start:row.out_stop, col.out_start:col.out_stop] = result[row.local, col.local]
        if progress is not None:
            progress(done, total)
    return out
