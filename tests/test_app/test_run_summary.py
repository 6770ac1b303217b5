"""The summary a batch run keeps in its output folder, and the settings check of resuming."""
import json
from pathlib import Path

import pytest

from mmdeploy_srcnn.app.run_summary import (SUMMARY_NAME, RunSettings, RunSummary, SummaryError,
                                            check_resume, read_previous_settings)

SETTINGS = RunSettings('ab' * 32, (2.0, 3.0), 'onnxruntime', 'auto')


def test_summary_round_trips_settings_and_any_file_name(tmp_path):
    summary = RunSummary(tmp_path, 'ray', SETTINGS, Path('/models/m.onnx'))
    odd = Path(b'caf\xe9\n.png'.decode('utf-8', 'surrogateescape'))
    summary.add_done(odd, tmp_path / 'out.png')
    summary.add_failed(None, 'some reason')
    summary.write('finished', 1.25, not_run=3)
    data = json.loads((tmp_path / SUMMARY_NAME).read_text(encoding='ascii'))
    assert data['counts'] == {'done': 1, 'skipped': 0, 'failed': 1, 'not_run': 3}
    assert data['done'][0]['input'] == str(odd) and data['failed'][0]['input'] is None
    assert read_previous_settings(tmp_path) == SETTINGS
    assert [p.name for p in tmp_path.iterdir()] == [SUMMARY_NAME]  # no temporary file left


def test_no_summary_means_nothing_to_check(tmp_path):
    assert read_previous_settings(tmp_path) is None
    check_resume(None, SETTINGS, tmp_path)


def test_every_differing_setting_is_named(tmp_path):
    other = RunSettings('cd' * 32, (2.0, 2.0), 'openvino', 'auto')
    with pytest.raises(SummaryError) as error:
        check_resume(other, SETTINGS, tmp_path)
    assert str(error.value) == (
        f'{tmp_path / SUMMARY_NAME}: the outputs in {tmp_path} were made with model_sha256 '
        f'{"cd" * 32} (this run: {"ab" * 32}), scale x2 (this run: x2x3), backend openvino '
        '(this run: onnxruntime); pass --overwrite to redo them, or choose another --out-dir')
    check_resume(SETTINGS, SETTINGS, tmp_path)


@pytest.mark.parametrize('content', [b'{not json', b'[]', b'{"settings": {"scale": "2"}}',
                                     b'\xff\xfe'])
def test_a_foreign_summary_is_refused(tmp_path, content):
    (tmp_path / SUMMARY_NAME).write_bytes(content)
    with pytest.raises(SummaryError, match=r'not a summary of this tool \(.*\); remove it, or '
                                           r'choose another --out-dir$'):
        read_previous_settings(tmp_path)
