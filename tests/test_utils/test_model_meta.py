"""The model's I/O convention read from metadata: every number checked as it will be used."""
import numpy as np
import pytest

from mmdeploy_srcnn.utils.model_meta import METADATA_PREFIX, ModelConvention


def _read(**fields: str) -> ModelConvention:
    return ModelConvention.from_metadata({METADATA_PREFIX + key: value
                                          for key, value in fields.items()})


@pytest.mark.parametrize('text, expected', [
    ('0,1', (0.0, 1.0)), ('0,255', (0.0, 255.0)), ('-1,1', (-1.0, 1.0)),
    ('0,65535', (0.0, 65535.0)), (' -123.675 , 131.325 ', (-123.675, 131.325)),
    ('0,1e-3', (0.0, 1e-3)), ('1000,1004', (1000.0, 1004.0)),
])
def test_sane_value_ranges_are_read(text, expected):
    assert _read(value_range=text).value_range == expected


@pytest.mark.parametrize('text, message', [
    # zero span once in float32, although low < high in float64
    ('0,1e-300', 'high - low >= 0.001'),
    ('65000,65000.001', 'high - low >= 0.001'),
    # float32 steps at 65000 are 1/128 of this span: outputs quantised that coarsely
    ('65000,65000.5', '1/256 of the largest |value|'),
    ('0,1e-4', 'high - low >= 0.001'),
    ('1,0', 'low < high'),
    ('1,1', 'low < high'),
    # finite in float64, infinite in float32
    ('0,1e39', 'be finite'),
    ('0,65536', '|values| <= 65535'),
])
def test_value_ranges_float32_cannot_use_are_refused(text, message):
    with pytest.raises(ValueError, match=r'^bad model metadata: value_range must .*'
                                         + message.replace('|', r'\|')):
        _read(value_range=text)


@pytest.mark.parametrize('text', ['-inf,inf', 'nan,1', '0,1_0', '\u0660,\u0661', '0,1,2', '0',
                                  '0x0,1', ''])
def test_value_range_text_must_be_two_ascii_decimals(text):
    with pytest.raises(ValueError, match=r'^bad value_range in model metadata: .* \(expected '
                                         r'LOW,HIGH in ASCII decimals\)$'):
        _read(value_range=text)


def test_the_float32_span_is_what_the_model_sees():
    """A range accepted here maps [0, 1] onto itself through the model's float32 I/O."""
    convention = _read(value_range='-1000,1000')
    rgb = np.linspace(0, 1, 4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2)
    fed = convention.model_inputs(rgb, 2)['input']
    assert fed.min() == -1000 and fed.max() == 1000
    back = convention.rgb_output({'output': fed})
    np.testing.assert_allclose(back, rgb, atol=2 ** -16)


@pytest.mark.parametrize('value_range', [(0, 1e-300), (0.0,), ('0', '1'), (False, True), None])
def test_value_range_given_in_code_is_checked_too(value_range):
    with pytest.raises(ValueError, match='^value_range must'):
        ModelConvention(value_range=value_range)


@pytest.mark.parametrize('key', ['halo', 'input_halo'])
@pytest.mark.parametrize('text', ['\u0666', '1\u0660', '\u00b2', '\uff16', '+6', '-1', '6.0',
                                  ' 6', '1000', ''])
def test_halos_are_ascii_digits(key, text):
    with pytest.raises(ValueError, match=rf"^bad {key} in model metadata: .* \(expected 1 to 3 "
                                         r"ASCII digits\)$"):
        _read(**{key: text})


def test_halos_are_read():
    convention = _read(halo='12', input_halo='0')
    assert (convention.halo, convention.input_halo) == (12, 0)


def test_metadata_round_trip_keeps_every_field():
    convention = ModelConvention(value_range=(-123.675, 131.325), halo=7, input_halo=2,
                                 color_order='BGR', factor_format='nchw')
    assert ModelConvention.from_metadata(convention.to_metadata()) == convention
