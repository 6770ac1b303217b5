"""tools/profiler.py: one run measures PyTorch eager and the backends; table, JSON, ORT split."""
import json

import pytest
from support.tools import load_tool

TINY = ['--shape', '12x10', '--scale', '2x3', '--warmup', '0', '--iters', '1']
ENGINE_FIELDS = {'engine', 'options', 'latency', 'peak_rss_mb', 'rss_delta_mb', 'node_split',
                 'images_per_s', 'output_mpix_per_s', 'gflop_per_s'}


profiler = load_tool('profiler')


@pytest.fixture(scope='module')
def config_run(tmp_path_factory):
    """The profiler on the main config, both backends, tiny input, one timed run."""
    work_dir = tmp_path_factory.mktemp('profile')
    out = work_dir / 'report.json'
    code = profiler.main(['configs/srcnn_dynamic.py', *TINY, '--batch', '2', '--work-dir',
                          str(work_dir), '--out', str(out)])
    return code, work_dir, json.loads(out.read_text())


@pytest.mark.openvino
def test_json_has_every_engine_and_field(config_run):
    code, _, report = config_run
    assert code == 0
    assert report['input_shape'] == [2, 3, 12, 10] and report['output_shape'] == [2, 3, 24, 30]
    assert report['macs_per_output_pixel'] == 20_000  # SRCNN 9-1-5, 64/32 filters
    assert report['flop_per_run'] == 2 * 20_000 * 2 * 24 * 30
    assert [e['engine'] for e in report['engines']] == ['pytorch', 'onnxruntime/f32',
                                                        'openvino/f32']
    for engine in report['engines']:
        assert set(engine) == ENGINE_FIELDS
        assert set(engine['latency']) == {'mean', 'median', 'p90', 'min'}
        assert 0 < engine['latency']['min'] <= engine['latency']['median']
        assert engine['gflop_per_s'] > 0 and engine['peak_rss_mb'] > 0
    assert 'getrusage' in report['memory_method']


@pytest.mark.openvino
def test_onnxruntime_node_split_sums_to_100_percent(config_run):
    _, work_dir, report = config_run
    split = next(e for e in report['engines'] if e['engine'] == 'onnxruntime/f32')['node_split']
    assert sum(split['by_op'].values()) == pytest.approx(100, abs=1e-6)
    assert sum(split['stages'].values()) == pytest.approx(100, abs=1e-6)
    assert split['stages']['resize'] > 0 and 'Conv' in split['by_op']
    # the config's default, the matmul resize: two MatMul per image (ORT may fuse them)
    assert 'MatMul' in split['by_op'] or 'FusedMatMul' in split['by_op']
    assert 0 < split['node_seconds'] <= split['run_seconds'] * 1.01
    assert list((work_dir / 'profile').glob('ort_profile*.json'))  # kept inside --work-dir


@pytest.mark.openvino
def test_table_names_every_engine_and_the_resize_share(config_run, capsys, tmp_path):
    _, work_dir, _ = config_run
    code = profiler.main([str(work_dir / 'end2end.onnx'), *TINY, '--backend', 'onnxruntime',
                          '--work-dir', str(tmp_path)])
    table = capsys.readouterr().out
    assert code == 0
    assert ': input 1x3x12x10 (NCHW) at x2x3 -> output 1x3x24x30, ' in table.splitlines()[0]
    assert 'median ms' in table and 'GFLOP/s' in table and 'peak RSS MB' in table
    assert 'onnxruntime/f32 node time' in table and 'resize stage' in table
    assert not any(line.startswith('pytorch') for line in table.splitlines())  # no model
    assert (tmp_path / 'profile.json').is_file()  # the report goes into the work dir


@pytest.mark.parametrize('args, message', [
    (['missing.onnx'], 'profiler.py: error: missing.onnx: no such file'),
    (['configs/srcnn_dynamic.py', '--backend', 'nope'], "unknown backend type 'nope'"),
])
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    assert profiler.main([*args, *TINY, '--work-dir', str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
