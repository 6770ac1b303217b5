"""atomic_write / atomic_path: never partial, never clobbering when told not to, never through
links; printable: names that cannot forge message lines."""
import errno
import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import hostile

from mmdeploy_srcnn.utils import fileio
from mmdeploy_srcnn.utils.fileio import (OutputExistsError, atomic_path, atomic_write, file_sha256,
                                         printable)
from mmdeploy_srcnn.utils.image import ImageError, write_image

REPO_ROOT = Path(__file__).resolve().parents[2]


def _names(folder: Path) -> list:
    return sorted(child.name for child in folder.iterdir())


@pytest.mark.parametrize('name, shown', [
    ('photo.png', 'photo.png'),
    ('my photo (1).png', 'my photo (1).png'),
    ('café/图片.png', 'café/图片.png'),
    (hostile.HOSTILE_NAME, 'evil\\nerror: forged line \\x1b[31mred.png'),
    ('a\rb\tc\x00d.png', 'a\\rb\\tc\\x00d.png'),
    ('line\u2028sep\u202eevil.png', 'line\\u2028sep\\u202eevil.png'),
    (os.fsdecode(b'bad\xffbyte.png'), 'bad\\xffbyte.png'),
    (Path('dir') / 'x\n.png', 'dir/x\\n.png'),
    (b'bytes\n.png', 'bytes\\n.png'),
])
def test_printable_escapes_exactly_what_could_forge_or_hide_text(name, shown):
    assert printable(name) == shown
    assert printable(name).isprintable()


def test_new_file_and_replacement_by_default(tmp_path):
    path = tmp_path / 'out.txt'
    with atomic_write(path, 'w') as file:
        file.write('first')
    with atomic_write(path, 'w') as file:
        file.write('second')
    assert path.read_text() == 'second'
    assert _names(tmp_path) == ['out.txt']
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~fileio._current_umask()


def test_no_overwrite_refuses_an_existing_file(tmp_path):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old')
    with pytest.raises(OutputExistsError) as raised:
        with atomic_write(path, overwrite=False) as file:
            file.write(b'new')
    assert isinstance(raised.value, FileExistsError) and raised.value.filename == str(path)
    assert path.read_bytes() == b'old'
    assert _names(tmp_path) == ['out.bin']


def test_no_overwrite_refuses_a_file_that_appeared_during_the_write(tmp_path):
    path = tmp_path / 'out.bin'
    with pytest.raises(OutputExistsError):
        with atomic_write(path, overwrite=False) as file:
            file.write(b'ours')
            path.write_bytes(b'theirs')  # another run finished first
    assert path.read_bytes() == b'theirs'
    assert _names(tmp_path) == ['out.bin']


def test_of_two_interleaved_writers_the_first_to_finish_wins(tmp_path):
    path = tmp_path / 'out.bin'
    with pytest.raises(OutputExistsError):
        with atomic_write(path, overwrite=False) as slow:
            slow.write(b'slow')
            with atomic_write(path, overwrite=False) as fast:
                fast.write(b'fast')
    assert path.read_bytes() == b'fast'
    assert _names(tmp_path) == ['out.bin']


WRITER = """
import sys, time
from pathlib import Path
from mmdeploy_srcnn.utils.fileio import OutputExistsError, atomic_write

path, go, index = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
go.with_name(f'ready{index}').touch()
while not go.exists():  # start together
    time.sleep(0.001)
try:
    with atomic_write(path, overwrite=False) as file:
        file.write(bytes([index]) * 100_000)
except OutputExistsError:
    sys.exit(3)
"""


def test_concurrent_processes_one_wins_the_others_are_refused(tmp_path):
    folder, go = tmp_path / 'out', tmp_path / 'go'
    folder.mkdir()
    path = folder / 'result.bin'
    writers = [subprocess.Popen([sys.executable, '-c', WRITER, str(path), str(go), str(index)],
                                cwd=REPO_ROOT) for index in range(4)]
    while len(list(tmp_path.glob('ready*'))) < len(writers):  # all imported, waiting
        assert all(writer.poll() is None for writer in writers)
        time.sleep(0.01)
    go.touch()
    codes = [writer.wait(120) for writer in writers]
    assert sorted(codes) == [0, 3, 3, 3]
    assert path.read_bytes() == bytes([codes.index(0)]) * 100_000
    assert _names(folder) == ['result.bin']


@pytest.mark.parametrize('overwrite', [False, True])
def test_a_link_planted_at_the_destination_is_never_followed(tmp_path, overwrite):
    target = tmp_path / 'elsewhere.txt'
    path = tmp_path / 'out.txt'
    path.symlink_to(target)  # dangling: following it would create `target`
    if overwrite:
        with atomic_write(path, 'w', overwrite=True) as file:
            file.write('result')
        assert not path.is_symlink() and path.read_text() == 'result'
    else:
        with pytest.raises(OutputExistsError):
            with atomic_write(path, 'w', overwrite=False) as file:
                file.write('result')
        assert path.is_symlink()
    assert not target.exists()


def test_a_temporary_file_replaced_by_a_link_is_not_published(tmp_path):
    target = tmp_path / 'victim.txt'
    target.write_text('precious')
    path = tmp_path / 'out.txt'
    with pytest.raises(OSError, match='the temporary file was replaced while being written'):
        with atomic_write(path, 'w') as file:
            file.write('result')
            [temporary] = [child for child in tmp_path.iterdir() if child.name.endswith('.tmp')]
            temporary.unlink()
            temporary.symlink_to(target)
    assert target.read_text() == 'precious'
    assert not path.exists() and _names(tmp_path) == ['victim.txt']


def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, overwrite=True) as file:
            file.write(b'partial')
            raise KeyboardInterrupt
    assert path.read_bytes() == b'old' and _names(tmp_path) == ['out.bin']


def test_hard_link_is_used_where_rename_without_replace_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, '_renameat2', None)
    path = tmp_path / 'out.bin'
    with atomic_write(path, overwrite=False) as file:
        file.write(b'first')
    with pytest.raises(OutputExistsError):
        with atomic_write(path, overwrite=False) as file:
            file.write(b'second')
    assert path.read_bytes() == b'first' and _names(tmp_path) == ['out.bin']


def test_a_file_system_with_neither_method_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, '_renameat2', None)

    def no_hard_links(*args, **kwargs):
        raise OSError(errno.EPERM, 'Operation not permitted')

    monkeypatch.setattr(os, 'link', no_hard_links)
    path = tmp_path / 'out.bin'
    with pytest.raises(OSError, match='can neither rename without replacing nor hard-link'):
        with atomic_write(path, overwrite=False) as file:
            file.write(b'data')
    assert _names(tmp_path) == []


def test_atomic_path_publishes_with_the_same_rule(tmp_path):
    path = tmp_path / 'model.onnx'
    with atomic_path(path, overwrite=False) as temporary:
        assert temporary.suffix == '.onnx' and temporary.parent == tmp_path
        temporary.write_bytes(b'model')
    with pytest.raises(OutputExistsError):
        with atomic_path(path, overwrite=False) as temporary:
            temporary.write_bytes(b'other model')
    assert path.read_bytes() == b'model' and _names(tmp_path) == ['model.onnx']


def test_destination_name_at_the_length_limit(tmp_path):
    path = tmp_path / ('n' * 251 + '.png')
    with atomic_write(path) as file:
        file.write(b'data')
    assert path.read_bytes() == b'data'


def test_write_image_without_overwrite_names_the_file(tmp_path):
    path = tmp_path / hostile.HOSTILE_NAME
    path.write_bytes(b'old')
    with pytest.raises(ImageError) as raised:
        write_image(path, np.zeros((4, 4), np.uint8), overwrite=False)
    assert str(raised.value) == (f'{printable(path)}: output file exists, not replaced '
                                 '(overwriting is off)')
    assert '\n' not in str(raised.value) and '\x1b' not in str(raised.value)
    assert path.read_bytes() == b'old' and _names(tmp_path) == [hostile.HOSTILE_NAME]


def test_file_sha256_reads_the_whole_file_in_blocks(tmp_path):
    path = tmp_path / 'weights.bin'
    path.write_bytes(b'a' * (3 << 20) + b'tail')  # more than one 1 MiB block
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(str(path)) == expected
    (tmp_path / 'empty').touch()
    assert file_sha256(tmp_path / 'empty') == \
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
