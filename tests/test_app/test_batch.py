"""Inputs of a batch (folders, glob patterns, --inputs-from) and its plan, for both engines."""
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdeploy_srcnn.app.batch import Failure, collect_inputs, plan_jobs, read_path_list
from mmdeploy_srcnn.app.cli import main
from mmdeploy_srcnn.utils.image import read_image, write_image


@pytest.fixture
def tree(tmp_path) -> Path:
    """a/one.png, a/two.jpg, a/notes.txt, a/.hidden.png and a/b/three.png."""
    pixels = np.full((8, 8, 3), 128, np.uint8)
    for name in ['a/one.png', 'a/two.jpg', 'a/.hidden.png', 'a/b/three.png']:
        write_image(tmp_path / name, pixels)
    (tmp_path / 'a' / 'notes.txt').write_text('not an image')
    return tmp_path


def test_glob_patterns_expand_and_existing_names_are_literal(tree):
    errors = []
    found = collect_inputs([tree / 'a' / '*.png', tree / '**' / 'three.png',
                            tree / 'z*.png'], errors)
    assert found == [tree / 'a' / 'one.png', tree / 'a' / 'b' / 'three.png']
    assert errors == [Failure(tree / 'z*.png',
                              f'{tree / "z*.png"}: no file or folder matches this pattern')]
    literal = tree / 'x[1].png'  # an existing file is never a pattern
    literal.write_bytes(b'')
    assert collect_inputs([literal], errors) == [literal]


def test_listed_paths_are_literal_never_patterns(capsys, srcnn_onnx, tree):
    listing = tree / 'list.txt'
    listing.write_text(f'{tree / "a" / "*.png"}\n')  # a name with a '*', which does not exist
    code = main([str(srcnn_onnx), '--inputs-from', str(listing), '--out-dir', str(tree / 'up'),
                 '--scale', '2'])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == f'srcnn-upscale: error: {tree / "a" / "*.png"}: no such file or folder\n'
    assert not (tree / 'up').exists()
    errors = []
    assert collect_inputs([tree / 'a' / '*.png'], errors, patterns=False) == []
    assert errors == [Failure(tree / 'a' / '*.png', f'{tree / "a" / "*.png"}: no such file or '
                                                    'folder')]


def test_a_pattern_matching_a_folder_takes_its_images(tree):
    errors = []
    assert collect_inputs([tree / 'a*'], errors) == [tree / 'a' / 'one.png',
                                                     tree / 'a' / 'two.jpg']
    assert errors == []


def test_list_file_one_path_a_line_blank_lines_skipped(tree):
    listing = tree / 'list.txt'
    listing.write_bytes(b'a/one.png\r\n\n  \n' + bytes(tree / 'a' / 'b') + b'\n#x.png')
    errors = []
    paths = read_path_list(listing, errors)
    assert paths == [Path('a/one.png'), tree / 'a' / 'b', Path('#x.png')]
    assert errors == []
    assert read_path_list(tree / 'missing.txt', errors) == []
    assert errors[-1].message == f'{tree / "missing.txt"}: cannot read the list of inputs ' \
                                 '(No such file or directory)'
    (tree / 'empty.txt').write_bytes(b'\n\n')
    assert read_path_list(tree / 'empty.txt', errors) == []
    assert errors[-1].message == f'{tree / "empty.txt"}: the list of inputs is empty'


def test_undecodable_names_survive_the_list(tmp_path):
    listing = tmp_path / 'list.txt'
    listing.write_bytes(b'caf\xe9.png\n')  # Latin-1, not UTF-8
    assert read_path_list(listing, []) == [Path(b'caf\xe9.png'.decode('utf-8', 'surrogateescape'))]


def test_inputs_from_standard_input_with_the_local_engine(capsys, monkeypatch, srcnn_onnx, tree):
    stdin = io.TextIOWrapper(io.BytesIO(f'{tree / "a" / "one.png"}\n'.encode()))
    monkeypatch.setattr(sys, 'stdin', stdin)
    code = main([str(srcnn_onnx), str(tree / 'a' / 'b' / 'three.png'), '--inputs-from', '-',
                 '--out-dir', str(tree / 'up'), '--scale', '2'])
    out, err = capsys.readouterr()
    assert (code, err) == (0, '')
    assert out.startswith('2 of 2 images upscaled at x2 (onnxruntime f32) in ')
    assert read_image(tree / 'up' / 'one.png').shape == (16, 16, 3)


def test_inputs_are_required_and_engine_options_need_their_engine(capsys, srcnn_onnx, tmp_path):
    for args, message in [
            ([], 'the following arguments are required: INPUT (or --inputs-from FILE)'),
            (['x.png', '--workers', '2'], '--ray-address and --workers need --engine ray'),
            (['x.png', '--engine', 'ray', '-o', 'y.png'],
             '--engine ray writes into --out-dir DIR; -o/--output is for one image on the '
             'local engine')]:
        target = ['--out-dir', str(tmp_path)] if '-o' not in args else []
        with pytest.raises(SystemExit) as exit_:
            main([str(srcnn_onnx), *args, *target, '--scale', '2'])
        assert exit_.value.code == 2
        assert capsys.readouterr().err.splitlines() == \
            [f'srcnn-upscale: error: {message} (see srcnn-upscale --help)']


def test_plan_skips_finished_jobs_only_when_asked(tmp_path):
    sources = [tmp_path / 'in' / 'a.png', tmp_path / 'in' / 'b.png']
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    (out_dir / 'a.png').write_bytes(b'done')
    errors = []
    jobs, skipped = plan_jobs(sources, None, out_dir, False, False, errors, skip_done=True)
    assert [job.source.name for job in jobs] == ['b.png']
    assert [job.output for job in skipped] == [out_dir / 'a.png'] and errors == []
    jobs, skipped = plan_jobs(sources, None, out_dir, False, False, errors)
    assert [job.source.name for job in jobs] == ['b.png'] and skipped == []
    assert errors == [Failure(sources[0], f'{out_dir / "a.png"}: output file exists (pass '
                                          '--overwrite to replace it)')]
    errors = []  # with --compare, an output without its comparison is not finished
    jobs, skipped = plan_jobs(sources, None, out_dir, True, False, errors, skip_done=True)
    assert skipped == [] and [job.source.name for job in jobs] == ['b.png']
    assert errors[0].message.endswith('output file exists (pass --overwrite to replace it)')
