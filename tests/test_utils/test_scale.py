"""Numbers written as text: ASCII decimals only."""
import pytest

from mmdeploy_srcnn.utils.scale import parse_decimal, parse_scale


@pytest.mark.parametrize('text, expected', [
    ('2', 2.0), (' 2.5 ', 2.5), ('+3', 3.0), ('-1', -1.0), ('.5', 0.5), ('2.', 2.0),
    ('1e3', 1000.0), ('1E-3', 0.001),
])
def test_plain_decimals_are_read(text, expected):
    assert parse_decimal(text) == expected


@pytest.mark.parametrize('text', [
    '\u0663',  # Arabic-Indic 3, which float() reads as 3
    '\u0966',  # Devanagari 0
    '\uff13',  # fullwidth 3
    '1\u0660',  # mixed scripts
    '\u00b2',  # superscript 2
    '2_0', 'inf', 'nan', '-inf', '0x10', '', ' ', '1e', 'e3', '1.2.3', '--1',
])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match='is not a plain decimal number'):
        parse_decimal(text)


@pytest.mark.parametrize('text', ['\u0663', '2x\u0663', '\u0662x3', '\uff12', '2\u00d73'])
def test_scales_are_ascii_only(text):
    with pytest.raises(ValueError, match='is not a number or HEIGHTxWIDTH'):
        parse_scale(text)


@pytest.mark.parametrize('text, expected', [('3', (3.0, 3.0)), (' 2 x 3 ', (2.0, 3.0)),
                                            ('2X3', (2.0, 3.0))])
def test_scale_text_is_read(text, expected):
    assert parse_scale(text) == expected


@pytest.mark.parametrize('text', ['inf', '-Infinity', 'nan', ' NaN '])
def test_infinite_and_nan_scales_say_so(text):
    with pytest.raises(ValueError, match=r'must be finite and > 0'):
        parse_scale(text)
