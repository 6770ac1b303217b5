"""Tiled inference equals untiled inference: plan invariants, alignment, real photos."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data

from mmdeploy_srcnn.app import Upscaler
from mmdeploy_srcnn.app.tiling import (ALIGN_TOLERANCE, MIN_TILE, TilingError, aligned_starts,
                                       max_tile_side, plan_axis, plan_tiles)
from mmdeploy_srcnn.utils.image import to_float
from mmdeploy_srcnn.utils.model_meta import ModelConvention
from mmdeploy_srcnn.utils.sizes import resized_length, smallest_enlarged_length

SRCNN_HALO = ModelConvention().halo  # 6: SRCNN 9-1-5


def test_aligned_starts_are_where_the_output_grid_lines_up():
    assert list(aligned_starts(12, 2.5)) == [0, 2, 4, 6, 8, 10]
    assert list(aligned_starts(5, 3.0)) == [0, 1, 2, 3, 4]
    assert list(aligned_starts(35, 2.3)) == [0, 10, 20, 30]  # float32(2.3) * 10 = 23 - 5e-7
    assert list(aligned_starts(9, 2.25)) == [0, 4, 8]


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 300), tile=st.integers(MIN_TILE, 120),
       scale=st.one_of(st.sampled_from([1.0, 1.5, 2.0, 2.3, 2.5, 3.0, 3.3, 4.0, 0.5, 1.8]),
                       st.floats(0.3, 6.0)))
def test_plan_invariants_that_make_tiles_exact(length, tile, scale):
    scale = float(np.float32(scale))
    out_length = resized_length(length, scale)
    try:
        spans = plan_axis(length, scale, tile, SRCNN_HALO)
    except TilingError:
        # refused only when aligned starts are too far apart for a tile of bounded size, or
        # when a crop must be wider than that for the resize to add a pixel
        gap = np.diff(aligned_starts(length, scale)).max(initial=length)
        min_crop = smallest_enlarged_length(scale) if scale > 1 else 1
        assert gap * scale + tile + 2 * SRCNN_HALO + 6 * scale > max_tile_side(tile) or \
            resized_length(min_crop, scale) > max_tile_side(tile)
        return
    assert max(resized_length(s.in_stop - s.in_start, scale) for s in spans) <= \
        max(max_tile_side(tile), out_length if len(spans) == 1 else 0)
    assert spans[0].out_start == 0 and spans[-1].out_stop == out_length
    for before, after in itertools.pairwise(spans):
        assert before.out_stop == after.out_start
    for span in spans:
        assert 0 <= span.in_start < span.in_stop <= length
        if scale > 1 and out_length > length:  # engines copy a crop the scale does not enlarge
            crop = span.in_stop - span.in_start
            assert resized_length(crop, scale) > crop
        assert abs(span.in_start * scale - span.origin) <= ALIGN_TOLERANCE
        # every bicubic tap of the resized pixels the convolutions read is the one the full
        # image uses: inside the tile, or clamped at an image border that the tile shares
        needed = np.arange(max(span.out_start - SRCNN_HALO, 0),
                           min(span.out_stop + SRCNN_HALO, out_length))
        taps = np.floor((needed + 0.5) / scale - 0.5).astype(int)[:, None] + np.arange(-1, 3)
        np.testing.assert_array_equal(np.clip(taps, 0, length - 1),
                                      np.clip(taps, span.in_start, span.in_stop - 1))
        # the tile's zero padding is a halo away from what it delivers, or where the image's is
        tile_end = span.origin + resized_length(span.in_stop - span.in_start, scale)
        assert span.out_start - span.origin >= SRCNN_HALO or span.origin == 0
        assert tile_end - span.out_stop >= SRCNN_HALO or tile_end == out_length


def test_plan_without_tile_is_one_span():
    (span,) = plan_axis(100, 2.5, None, SRCNN_HALO)
    assert (span.in_start, span.in_stop, span.out_start, span.out_stop) == (0, 100, 0, 250)


def test_misaligned_tile_start_would_shift_the_grid(srcnn_onnx):
    """Why tiles start at aligned offsets: at x2.5 an odd offset samples half a pixel off."""
    upscaler = Upscaler(srcnn_onnx)
    photo = to_float(data.astronaut()[100:140, 100:180])
    full = upscaler.upscale(photo, 2.5)
    for start, aligned in [(20, True), (21, False)]:
        crop = upscaler.upscale(photo[:, start:], 2.5)
        origin = int(np.ceil(start * 2.5))
        error = np.abs(crop[:, 10:60] - full[:, origin + 10:origin + 60]).max()
        assert (error < 1e-5) if aligned else (error > 1 / 255)


@pytest.mark.parametrize('scale', [2.5, 3, (2.3, 1.7), (2, 3), 1.5, 4])
def test_tiled_equals_untiled_on_a_photo_crop(srcnn_onnx, scale):
    photo = to_float(data.chelsea()[60:150, 150:270])
    untiled = Upscaler(srcnn_onnx).upscale(photo, scale)
    tiled = Upscaler(srcnn_onnx, tile=MIN_TILE).upscale(photo, scale)
    assert tiled.shape == untiled.shape
    assert np.abs(tiled - untiled).max() < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize('scale', [3, 2.5])
def test_tiled_equals_untiled_on_a_1000x800_photo(srcnn_onnx, scale):
    photo = data.hubble_deep_field()[:800, :1000]
    untiled = Upscaler(srcnn_onnx).upscale(to_float(photo), scale)
    tiled = Upscaler(srcnn_onnx, tile=400).upscale(to_float(photo), scale)
    assert tiled.shape == untiled.shape == (int(800 * scale), int(1000 * scale), 3)
    assert np.abs(tiled - untiled).max() <= 1 / 255


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 300), tile=st.integers(MIN_TILE, 200),
       scale=st.sampled_from([1.5, 2.0, 2.5, 3.0, 4.0]), input_halo=st.integers(1, 4))
def test_plan_reads_the_input_halo_around_every_tap(length, tile, scale, input_halo):
    """A model with spatial layers before its resize reads input_halo more input pixels."""
    out_length = resized_length(length, scale)
    spans = plan_axis(length, scale, tile, SRCNN_HALO, input_halo)
    for span in spans:
        needed = np.arange(max(span.out_start - SRCNN_HALO, 0),
                           min(span.out_stop + SRCNN_HALO, out_length))
        taps = np.floor((needed + 0.5) / scale - 0.5).astype(int)[:, None] + np.arange(-1, 3)
        reach = taps[:, :1] + np.arange(-input_halo, 4 + input_halo)
        np.testing.assert_array_equal(np.clip(reach, 0, length - 1),
                                      np.clip(reach, span.in_start, span.in_stop - 1))


def test_large_scales_get_wider_tiles_or_a_clear_refusal():
    # x100: the resize's taps cost 100 output pixels per input pixel; tiles grow, bounded.
    spans = plan_axis(64, 100, 384, SRCNN_HALO)
    assert max(resized_length(s.in_stop - s.in_start, 100) for s in spans) <= max_tile_side(384)
    with pytest.raises(TilingError, match=r'at scale 200 one model run needs more than 640 '
                                          r'output pixels per side .* use a tile of at least'):
        plan_axis(64, 200, 384, SRCNN_HALO)
    assert len(plan_axis(64, 200, 1024, SRCNN_HALO)) > 1  # a larger tile works


def test_every_tile_is_wide_enough_for_the_scale_to_add_a_pixel(srcnn_onnx):
    # Engines copy a crop whose size the scale does not change (floor(n * 1.01) == n for
    # n < 100), where the whole image is resampled: tiles of 64 would differ by up to 219.
    image = np.random.default_rng(5).integers(0, 256, (120, 700, 3), dtype=np.uint8)
    for scale in [1.01, (1.01, 2.0)]:
        spans = plan_tiles(image.shape[:2], scale if isinstance(scale, tuple) else (scale,) * 2,
                           64, SRCNN_HALO)
        assert min(span.in_stop - span.in_start for span in spans[0]) >= 100  # x1.01 rows
        tiled = Upscaler(srcnn_onnx, tile=64, precision='f32').upscale(image, scale)
        whole = Upscaler(srcnn_onnx, tile=None, precision='f32').upscale(image, scale)
        assert np.abs(tiled.astype(int) - whole).max() <= 1  # uint8 rounding of ~1e-5
    with pytest.raises(TilingError, match='at scale 1.002 a tile must span at least 500 input '
                                          'pixels .* use a tile of at least 501'):
        plan_axis(1400, 1.002, 64, SRCNN_HALO)
