"""The output-size rule and the sides a scale leaves unchanged (which engines copy)."""
import pytest

from mmdeploy_srcnn.utils.sizes import resized_length, smallest_enlarged_length, unenlarged_sides


@pytest.mark.parametrize('scale, expected', [(1.002, 500), (1.01, 100), (1.5, 2), (2.0, 1)])
def test_smallest_enlarged_length_is_the_first_length_that_grows(scale, expected):
    length = smallest_enlarged_length(scale)
    assert length == expected
    assert resized_length(length, scale) > length
    assert length == 1 or resized_length(length - 1, scale) == length - 1


def test_smallest_enlarged_length_needs_an_enlarging_scale():
    with pytest.raises(ValueError, match='scale 1 does not enlarge'):
        smallest_enlarged_length(1.0)


@pytest.mark.parametrize('size, scale, expected', [
    ((8, 1000), (1.002, 1.002), [0]),  # 8 -> 8, 1000 -> 1002
    ((8, 10), (1.05, 1.05), [0, 1]),
    ((8, 10), (1.0, 1.0), []),  # a factor of 1 is a copy everywhere: consistent
    ((8, 10), (2.0, 0.5), []),  # shrinking always changes the size
    ((100, 99), (1.01, 1.01), [1]),
])
def test_unenlarged_sides(size, scale, expected):
    assert unenlarged_sides(size, scale) == expected
