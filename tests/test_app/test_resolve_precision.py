"""What ``--precision`` loads: auto's choice per CPU and table, explicit requests, refusals."""
from pathlib import Path
from typing import Optional

import onnx
import pytest
from onnx import helper

from mmdeploy_srcnn.app.precision import resolve_precision
from mmdeploy_srcnn.backends import BackendError
from mmdeploy_srcnn.utils.fileio import file_sha256
from mmdeploy_srcnn.utils.precision import (FLOAT_MODEL_SHA256_KEY, PRECISION_KEY, QUALITY_SCALES,
                                            QUALITY_TABLE_KEY, CpuFeatures, QualityTable)

AMX = CpuFeatures('Xeon with AMX', frozenset({'avx512f', 'avx512_vnni', 'amx_bf16', 'amx_int8'}))
VNNI = CpuFeatures('Xeon without AMX', frozenset({'avx512f', 'avx512_vnni', 'avx512_bf16'}))
ZEN3 = CpuFeatures('AMD EPYC (Zen 3)', frozenset({'avx2', 'fma'}))


def _table(**losses_by_precision: float) -> str:
    return QualityTable({'openvino': {p: {s: loss for s in QUALITY_SCALES}
                                      for p, loss in losses_by_precision.items()}}).to_json()


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / 'end2end.onnx'
    path.write_bytes(b'float model')
    return path


def _int8_file(model: Path, float_sha256: Optional[str] = None) -> Path:
    """An int8 file that records ``float_sha256`` (default: ``model``'s) as its source."""
    graph = helper.make_graph([], 'int8', [], [])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    helper.set_model_props(proto, {PRECISION_KEY: 'int8',
                                   FLOAT_MODEL_SHA256_KEY: float_sha256 or file_sha256(model)})
    path = model.with_name('end2end_int8.onnx')
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize('features, expected', [(AMX, 'int8'), (VNNI, 'int8'), (ZEN3, 'f32')])
def test_auto_takes_the_fastest_good_enough_precision_the_cpu_has(model, features, expected):
    int8 = _int8_file(model)
    meta = {QUALITY_TABLE_KEY: _table(int8=0.01, bf16=0.005)}
    resolved = resolve_precision(model, meta, 'openvino', 'auto', features)
    assert resolved.precision == expected
    assert resolved.path == (int8 if expected == 'int8' else model)
    assert features.model in resolved.reason


def test_auto_skips_a_precision_that_loses_too_much_or_has_no_file(model):
    meta = {QUALITY_TABLE_KEY: _table(int8=0.05, bf16=0.005)}
    _int8_file(model)
    assert resolve_precision(model, meta, 'openvino', 'auto', AMX).precision == 'bf16'
    model.with_name('end2end_int8.onnx').unlink()
    meta = {QUALITY_TABLE_KEY: _table(int8=0.001)}
    assert resolve_precision(model, meta, 'openvino', 'auto', AMX).precision == 'f32'


def test_auto_without_a_table_or_on_onnxruntime_is_f32(model):
    _int8_file(model)
    assert resolve_precision(model, {}, 'openvino', 'auto', AMX).precision == 'f32'
    meta = {QUALITY_TABLE_KEY: _table(int8=0.0)}
    assert resolve_precision(model, meta, 'onnxruntime', 'auto', AMX).precision == 'f32'
    assert resolve_precision(model, meta, 'reference', 'auto', AMX).precision == 'f32'


def test_explicit_requests(model):
    assert resolve_precision(model, {}, 'openvino', 'bf16', ZEN3).precision == 'bf16'
    with pytest.raises(BackendError,
                       match='no int8 model next to end2end.onnx .*srcnn_dynamic_openvino.py'):
        resolve_precision(model, {}, 'openvino', 'int8', ZEN3)
    int8 = _int8_file(model)
    assert resolve_precision(model, {}, 'openvino', 'int8', ZEN3).path == int8
    with pytest.raises(BackendError, match="an int8 model cannot run at precision 'f32'"):
        resolve_precision(int8, {PRECISION_KEY: 'int8'}, 'openvino', 'f32', ZEN3)
    assert resolve_precision(int8, {PRECISION_KEY: 'int8'}, 'openvino', 'auto',
                             ZEN3).precision == 'int8'
    with pytest.raises(BackendError, match="unknown precision 'fp64'"):
        resolve_precision(model, {}, 'openvino', 'fp64', ZEN3)
    with pytest.raises(BackendError, match="--precision bf16: precision 'bf16' is not "
                                           'supported on onnxruntime'):
        resolve_precision(model, {}, 'onnxruntime', 'bf16', ZEN3)
    with pytest.raises(BackendError, match='--precision bf16: reference runs f32 only'):
        resolve_precision(model, {}, 'reference', 'bf16', ZEN3)  # never reported but not run
    assert resolve_precision(model, {}, 'reference', 'f32', ZEN3).precision == 'f32'


def test_a_bad_table_in_the_model_is_refused(model):
    with pytest.raises(BackendError, match='metadata'):
        resolve_precision(model, {QUALITY_TABLE_KEY: '{"version": 99}'}, 'openvino', 'auto',
                          AMX)


def test_an_int8_file_from_another_export_is_never_run(model):
    # a re-export into the same work dir leaves the old end2end_int8.onnx behind
    stale = _int8_file(model, float_sha256='0' * 64)
    meta = {QUALITY_TABLE_KEY: _table(int8=0.001)}
    resolved = resolve_precision(model, meta, 'openvino', 'auto', VNNI)
    assert (resolved.precision, resolved.path) == ('f32', model)
    assert 'int8 not used: ' in resolved.reason and 'was not quantized from end2end.onnx' \
        in resolved.reason
    assert len(resolved.warnings) == 1 and resolved.warnings[0].startswith(
        f'int8 not used: {stale}: this int8 model was not quantized from end2end.onnx')
    with pytest.raises(BackendError, match='end2end_int8.onnx: this int8 model was not quantized '
                                           'from end2end.onnx as it is now'):
        resolve_precision(model, meta, 'openvino', 'int8', VNNI)
    stale.write_bytes(b'not onnx')
    with pytest.raises(BackendError, match='end2end_int8.onnx: cannot read the int8 model'):
        resolve_precision(model, meta, 'openvino', 'int8', VNNI)
    _int8_file(model)  # quantized from the model as it is: used, no warning
    resolved = resolve_precision(model, meta, 'openvino', 'auto', VNNI)
    assert (resolved.precision, resolved.warnings) == ('int8', ())


@pytest.mark.parametrize('scale, expected', [((2.0, 2.0), 'int8'), ((1.5, 4.0), 'int8'),
                                             ((8.0, 8.0), 'f32'), ((1.2, 2.0), 'f32')])
def test_auto_takes_a_reduced_precision_only_at_measured_scales(model, scale, expected):
    _int8_file(model)
    meta = {QUALITY_TABLE_KEY: _table(int8=0.001)}
    resolved = resolve_precision(model, meta, 'openvino', 'auto', VNNI, scale=scale)
    assert resolved.precision == expected
    if expected == 'f32':
        assert 'is outside the scales whose quality loss was measured (1.5-4)' in resolved.reason
    # an explicit request is taken as asked, whatever the scale
    assert resolve_precision(model, meta, 'openvino', 'int8', VNNI, scale=scale).precision \
        == 'int8'
