"""Writing files so that a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file created next to the destination (``mkstemp``: a new file,
``O_EXCL``, so never through a link planted under its name), is flushed to disk, and is then
published under the destination name in one step:

- ``overwrite=True``: ``rename``, which replaces the destination (a link planted there is
  replaced, not followed).
- ``overwrite=False``: a rename that fails if the destination exists, checked by the kernel at
  the moment of publishing, so a file that appeared while the data was being produced (another
  run writing the same output) is never replaced: ``renameat2(RENAME_NOREPLACE)`` on Linux, or
  where that call or the file system lacks it, a hard link under the destination name (which
  fails if the name exists) and removal of the temporary name.

Also here: :func:`printable`, the one way file names (and other text from outside) are put into
messages.
"""
import contextlib
import ctypes
import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator, Optional, Tuple, Union

PathLike = Union[str, os.PathLike]

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# Errors by which renameat2 or link say "not supported here" rather than "failed".
_UNSUPPORTED = frozenset([errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP,
                          errno.EPERM])


class OutputExistsError(FileExistsError):
    """The destination exists and overwriting was not allowed; it was left untouched."""


def printable(value: Union[str, bytes, os.PathLike]) -> str:
    """A path (or other text from outside) made safe to show on one line of a terminal.

    Characters that Python's ``repr`` would escape (newline, carriage return, ESC and the
    other control characters, line separators, bidirectional overrides ...) are shown as
    ``repr`` shows them (``\\n``, ``\\x1b``, ``\\u202e``), and bytes that are not valid in the
    file-system encoding as ``\\xNN``. A name can then neither forge a second message line nor
    send terminal escape sequences; ordinary names, non-ASCII ones included, are unchanged.
    """
    text = os.fsdecode(value)
    if text.isprintable():
        return text
    return ''.join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if '\udc80' <= char <= '\udcff':  # an undecodable byte, kept by Python as a lone surrogate
        return f'\\x{ord(char) - 0xDC00:02x}'
    return char if char.isprintable() or char == ' ' else repr(char)[1:-1]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; a written result should get the usual
# permissions of a new file instead.
_FILE_MODE = 0o666 & ~_current_umask()


def _load_renameat2() -> Optional[Callable[..., int]]:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # not Linux, or a C library without it
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def _rename_no_replace(source: Path, destination: Path) -> bool:
    """Rename unless ``destination`` exists; False if this system or file system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination),
                  _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), os.fsdecode(destination))


def _publish(temporary: Path, destination: Path, overwrite: bool) -> None:
    """Give the complete temporary file the destination name, in one step."""
    if overwrite:
        os.replace(temporary, destination)
        return
    try:
        if _rename_no_replace(temporary, destination):
            return
        os.link(temporary, destination, follow_symlinks=False)
    except FileExistsError:
        raise OutputExistsError(errno.EEXIST, 'output file exists, not replaced '
                                '(overwriting is off)', os.fsdecode(destination)) from None
    except OSError as err:
        if err.errno not in _UNSUPPORTED:
            raise
        raise OSError(err.errno, 'this file system can neither rename without replacing nor '
                      'hard-link, so the output cannot be published without the risk of '
                      'replacing a file (allow overwriting to write here)',
                      os.fsdecode(destination)) from None
    os.unlink(temporary)


def _temporary_file(path: Path, suffix: str) -> Tuple[int, Path]:
    """Create an empty temporary file next to ``path``: its open descriptor and its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is shortened so that a destination name near the length limit still fits.
    fd, name = tempfile.mkstemp(prefix=f'.{path.name[:32]}.', suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)  # by descriptor: never through whatever the name points at
    except BaseException:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise
    return fd, Path(name)


def _check_still_ours(temporary: Path, expected: os.stat_result) -> None:
    """Refuse to publish if the temporary name now points at another file (or a link)."""
    current = os.lstat(temporary)
    if (current.st_dev, current.st_ino) != (expected.st_dev, expected.st_ino) \
            or not stat.S_ISREG(current.st_mode):
        raise OSError(errno.EEXIST, 'the temporary file was replaced while being written; '
                      'not published', os.fsdecode(temporary))


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = 'wb', *, overwrite: bool = True) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success publish it as ``path``.

    With ``overwrite=False`` an existing ``path``, including one that appeared while the
    caller was writing, raises :class:`OutputExistsError` and is left untouched. On any
    exception (KeyboardInterrupt included) the temporary file is removed and ``path`` keeps
    its previous content, or stays absent.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, temporary = _temporary_file(path, '.tmp')
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            _check_still_ours(temporary, os.fstat(file.fileno()))
        _publish(temporary, path, overwrite)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Give a temporary path next to ``path`` for a writer that wants a file name.

    Libraries such as ``torch.onnx.export`` or ``cv2.imwrite`` write to a name, not a file
    object. The temporary file keeps ``path``'s suffix so format detection still works, and
    is published as in :func:`atomic_write` (same ``overwrite`` rule) once the block ends.
    """
    path = Path(path)
    fd, temporary = _temporary_file(path, f'.tmp{path.suffix}')
    os.close(fd)
    try:
        yield temporary
        if not stat.S_ISREG(os.lstat(temporary).st_mode):
            raise OSError(errno.EEXIST, 'the temporary file was replaced by something other '
                          'than a file; not published', os.fsdecode(temporary))
        fd = os.open(temporary, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)  # the bytes are on disk before the name says the file is complete
        finally:
            os.close(fd)
        _publish(temporary, path, overwrite)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (which weights or model a run used)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for block in iter(lambda: file.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
