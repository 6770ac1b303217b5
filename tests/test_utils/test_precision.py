"""The ``auto`` precision rule, CPU feature detection and quality-table validation.

Every choice is made from features passed in explicitly, so these tests give the same result on
any machine: a Xeon with AVX512-VNNI/BF16/FP16 but no AMX, Xeons with AMX (with and without
AMX-FP16), and an AMD Zen 3 with AVX2 only.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmdeploy_srcnn.utils.precision import (ENGINE_PRECISIONS, MAX_AUTO_LOSS_DB, QUALITY_SCALES,
                                            SPEED_ORDER, CpuFeatures, QualityTable,
                                            QualityTableError, check_precision, choose_precision,
                                            engine_precision_pairs, fast_precisions,
                                            int8_model_path, parse_quality_table, read_cpu_features)

XEON_VNNI = CpuFeatures('Intel Xeon (Sapphire Rapids, no AMX)',
                        frozenset('avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16'.split()))
XEON_AMX = CpuFeatures('Intel Xeon (AMX)',
                       frozenset('avx2 avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 '
                                 'amx_int8 amx_tile'.split()))
XEON_AMX_FP16 = CpuFeatures('Intel Xeon (AMX-FP16)', XEON_AMX.flags | {'amx_fp16'})
ZEN3 = CpuFeatures('AMD EPYC 7B13', frozenset('avx2 fma f16c'.split()))


def table(**rows: float) -> QualityTable:
    """OpenVINO and ONNX Runtime rows with one loss for every quality scale, e.g.
    ``table(int8=0.01, bf16=0.005)``."""
    by_precision = {precision: {scale: loss for scale in QUALITY_SCALES}
                    for precision, loss in rows.items()}
    return QualityTable({'openvino': by_precision, 'onnxruntime': by_precision})


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
model name\t: {model}
flags\t\t: {flags}

processor\t: 1
model name\t: {model}
flags\t\t: {flags}
"""


@pytest.mark.parametrize('vendor, model, flags, bf16, int8', [
    ('GenuineIntel', 'Intel(R) Xeon(R) Processor', 'fpu avx2 avx512f avx512_vnni avx512_bf16',
     False, True),
    ('GenuineIntel', 'Intel(R) Xeon(R) Platinum 8480+',
     'avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8', True, True),
    ('AuthenticAMD', 'AMD EPYC 7B13 64-Core Processor', 'fpu avx2 fma f16c', False, False),
    ('GenuineIntel', 'Intel(R) Core(TM) i7-12700', 'avx2 avx_vnni', False, True),
])
def test_read_cpu_features_from_cpuinfo(tmp_path: Path, vendor, model, flags, bf16, int8):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO.format(vendor=vendor, model=model, flags=flags))
    features = read_cpu_features(path)
    assert features.model == model
    assert features.flags == frozenset(flags.split())
    assert (features.fast_bf16, features.fast_int8) == (bf16, int8)


def test_read_cpu_features_without_cpuinfo_has_no_flags(tmp_path: Path):
    features = read_cpu_features(tmp_path / 'missing')
    assert features.flags == frozenset()
    assert features.model  # a name for the report, never empty
    assert choose_precision(table(int8=0.0, bf16=0.0), 'openvino', features).precision == 'f32'


def test_read_cpu_features_of_this_machine_is_consistent():
    """On Linux the flags are the kernel's; the summary names every flag the choice uses."""
    features = read_cpu_features()
    if Path('/proc/cpuinfo').is_file():
        assert features.flags
    for flag in ('avx512_vnni', 'avx512_bf16', 'amx_bf16', 'amx_int8'):
        assert f'{flag}=' in features.summary()


def test_module_is_torch_free():
    code = ('import sys, mmdeploy_srcnn.utils.precision; '
            'sys.exit(1 if "torch" in sys.modules else 0)')
    assert subprocess.run([sys.executable, '-c', code]).returncode == 0


@pytest.mark.parametrize('features, engine, expected', [
    (XEON_VNNI, 'openvino', ('int8', 'f32')),
    (XEON_AMX, 'openvino', ('int8', 'bf16', 'f32')),
    (XEON_AMX_FP16, 'openvino', ('int8', 'bf16', 'f16', 'f32')),
    (ZEN3, 'openvino', ('f32',)),
    (XEON_VNNI, 'onnxruntime', ('f32',)),
    (ZEN3, 'onnxruntime', ('f32',)),
])
def test_fast_precisions(features, engine, expected):
    assert fast_precisions(engine, features) == expected


def test_int8_model_path_is_next_to_the_float_model():
    assert int8_model_path('work/end2end.onnx') == Path('work/end2end_int8.onnx')


def test_speed_order_lists_supported_precisions_only():
    assert set(SPEED_ORDER) == set(ENGINE_PRECISIONS)
    for engine, order in SPEED_ORDER.items():
        assert set(order) <= set(ENGINE_PRECISIONS[engine]) and order[-1] == 'f32'


@pytest.mark.parametrize('engine, precision', [('onnxruntime', 'f32'), ('onnxruntime', 'int8'),
                                               ('openvino', 'bf16'), ('openvino', 'int8')])
def test_check_precision_accepts(engine, precision):
    assert check_precision(engine, precision) == precision


@pytest.mark.parametrize('engine, precision, message', [
    ('onnxruntime', 'bf16', "precision 'bf16' is not supported on onnxruntime "
                            '(supported: f32, int8)'),
    ('openvino', 'fp16', "precision 'fp16' is not supported on openvino "
                         '(supported: f32, bf16, f16, int8, default)'),
    ('openvino', 'auto', "precision 'auto' is not supported"),
    ('tensorrt', 'f32', "unknown engine 'tensorrt' (known: onnxruntime, openvino)"),
])
def test_check_precision_rejects(engine, precision, message):
    with pytest.raises(ValueError) as info:
        check_precision(engine, precision)
    assert message in str(info.value)


def test_fast_precisions_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine 'tensorrt'"):
        fast_precisions('tensorrt', XEON_VNNI)


@pytest.mark.parametrize('features, rows, expected', [
    (XEON_AMX, dict(int8=0.01, bf16=0.005), 'int8'),      # fastest qualifying
    (XEON_AMX, dict(int8=0.05, bf16=0.005), 'bf16'),      # int8 loses too much
    (XEON_AMX_FP16, dict(int8=0.05, bf16=0.03, f16=0.001), 'f16'),
    (XEON_AMX, dict(int8=0.05, bf16=0.03, f16=0.0), 'f32'),  # no AMX-FP16: f16 not fast
    (XEON_VNNI, dict(int8=0.01, bf16=0.0), 'int8'),
    (XEON_VNNI, dict(int8=0.05, bf16=0.0), 'f32'),        # bf16 without AMX is not fast
    (XEON_AMX, dict(int8=0.02, bf16=0.0), 'int8'),        # the limit itself is allowed
    (ZEN3, dict(int8=0.0, bf16=0.0, f16=0.0), 'f32'),     # no units: f32 whatever the table
])
def test_choose_precision_openvino(features, rows, expected):
    assert choose_precision(table(**rows), 'openvino', features).precision == expected


def test_choose_precision_checks_every_scale():
    rows = {scale: 0.0 for scale in QUALITY_SCALES}
    rows[3.5] = MAX_AUTO_LOSS_DB + 0.001
    quality = QualityTable({'openvino': {'int8': rows, 'bf16': dict.fromkeys(rows, 0.0)}})
    choice = choose_precision(quality, 'openvino', XEON_AMX)
    assert choice.precision == 'bf16'
    assert choice.passed_over == ('int8: loses 0.021 dB at x3.5 (limit 0.02 dB)',)


def test_choose_precision_needs_every_scale_measured():
    rows = {scale: 0.0 for scale in QUALITY_SCALES if scale != 4.0}
    choice = choose_precision(QualityTable({'openvino': {'int8': rows}}), 'openvino', XEON_VNNI)
    assert choice.precision == 'f32'
    assert choice.passed_over[0] == 'int8: no quality measured at x4'


def test_choose_precision_without_table_or_engine_row_is_f32():
    assert choose_precision(None, 'openvino', XEON_AMX).precision == 'f32'
    other_engine = QualityTable({'onnxruntime': table(int8=0.0).losses['onnxruntime']})
    choice = choose_precision(other_engine, 'openvino', XEON_AMX)
    assert choice.precision == 'f32'
    assert 'int8: no quality measured for openvino' in choice.passed_over


def test_choose_precision_onnxruntime_is_f32_even_with_good_int8():
    assert choose_precision(table(int8=0.0), 'onnxruntime', XEON_AMX).precision == 'f32'


def test_quality_table_json_round_trip():
    original = table(int8=0.031, bf16=-0.002)
    parsed = parse_quality_table(original.to_json())
    assert parsed == original
    assert json.loads(original.to_json())['losses']['openvino']['int8']['1.5'] == 0.031


def test_quality_table_json_rounds_losses_to_four_decimals():
    parsed = parse_quality_table(table(int8=0.0123456).to_json())
    assert parsed.losses['openvino']['int8'][2.0] == 0.0123


def valid_table() -> dict:
    return table(int8=0.01).to_dict()


def mutated(path: str, value) -> str:
    data = valid_table()
    *parents, last = path.split('/')
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return json.dumps(data)


@pytest.mark.parametrize('text, message', [
    ('{not json', 'top level: not JSON'),
    ('[1, 2]', 'top level: expected an object, got list'),
    ('x' * 70000, 'top level: 70000 characters'),
    (mutated('version', 2), 'version: 2, this build reads version 1'),
    (mutated('metric', 'ssim'), "metric: 'ssim', expected 'y_psnr_loss_db'"),
    (mutated('split', ''), "split: expected a non-empty string, got ''"),
    (mutated('losses/openvino/int8/2', float('nan')), 'int8.2: loss nan dB outside'),
    (mutated('losses/openvino/int8/2', 250.0), 'int8.2: loss 250.0 dB outside [-1, 100]'),
    (mutated('losses/openvino/int8/2', '0.01'), "int8.2: loss '0.01' is not a number"),
    (mutated('losses/openvino/int8/2', True), 'int8.2: loss True is not a number'),
    (mutated('losses/openvino/int8/x2', 0.0), "scale 'x2' is not a number"),
    (mutated('losses/openvino/int8/\u0663', 0.0), "scale '\u0663' is not a number"),
    (mutated('losses/openvino/int8/1_0', 0.0), "scale '1_0' is not a number"),
    (mutated('losses/openvino/int8/0.5', 0.0), "scale '0.5' outside (1, 16]"),
    (mutated('losses/openvino/int4', {'2': 0.0}), "unknown precision 'int4'"),
    (mutated('losses/openvino/f32', {'2': 0.1}), 'f32 is the reference; its losses must be 0'),
    (mutated('losses/openvino', []), 'losses.openvino: expected an object, got list'),
])
def test_parse_quality_table_rejects(text, message):
    with pytest.raises(QualityTableError) as info:
        parse_quality_table(text, source='model.onnx')
    assert str(info.value).startswith('model.onnx: bad quality table at ')
    assert message in str(info.value)


def test_engine_precision_pairs_keep_every_precision_an_engine_runs():
    assert engine_precision_pairs(['onnxruntime', 'openvino', 'reference'],
                                  ['f32', 'bf16', 'int8']) == [
        ('onnxruntime', 'f32'), ('openvino', 'f32'), ('reference', 'f32'),
        ('openvino', 'bf16'), ('onnxruntime', 'int8'), ('openvino', 'int8')]
    with pytest.raises(ValueError, match="precision 'bf16' is not supported on onnxruntime "
                                         r'\(supported: f32, int8\)'):
        engine_precision_pairs(['onnxruntime'], ['f32', 'bf16'])
