"""Checkers: conditions on the export environment that decide whether a rewrite applies.

A rewrite registered with ``backend=``/``ir=`` applies where those match; ``extra_checkers``
add conditions of any kind. Each checker gets a :class:`RewriteEnv`: the context's backend and
IR, and the version of any installed distribution, looked up by name on first use
(``env['torch'] == '2.13.0'``; ``None`` when not installed).
"""
import abc
import importlib.metadata
from typing import Any, Dict, Optional

from packaging.version import InvalidVersion, Version

from .constants import IR, Backend, NameLike, as_name
from .patching import RewriterError


class RewriteEnv:
    """What checkers see: ``env['backend']``, ``env['ir']`` and ``env['<distribution>']``.

    Library versions come from the installed distributions' metadata
    (:func:`importlib.metadata.version`), queried only for the names a checker asks about, so
    building an environment costs nothing. A name that is not installed gives ``None``.
    """

    def __init__(self, backend: NameLike, ir: NameLike) -> None:
        self.backend = as_name(backend, Backend, 'backend')
        self.ir = as_name(ir, IR, 'ir')
        self._versions: Dict[str, Optional[str]] = {}

    def version(self, lib: str) -> Optional[str]:
        """The installed version of distribution ``lib``, or ``None`` if it is not installed."""
        if lib not in self._versions:
            try:
                self._versions[lib] = importlib.metadata.version(lib)
            except importlib.metadata.PackageNotFoundError:
                self._versions[lib] = None
        return self._versions[lib]

    def __getitem__(self, key: str) -> Optional[str]:
        if key == 'backend':
            return self.backend
        if key == 'ir':
            return self.ir
        if not isinstance(key, str) or not key:
            raise KeyError(key)
        return self.version(key)

    def get(self, key: str, default: Any = None) -> Any:
        """``env[key]``, or ``default`` where that is ``None`` (as ``dict.get`` reads)."""
        value = self[key]
        return default if value is None else value

    def __repr__(self) -> str:
        return f'RewriteEnv(backend={self.backend!r}, ir={self.ir!r})'


def collect_env(backend: NameLike, ir: NameLike) -> RewriteEnv:
    """The environment checkers see for a context of ``backend`` and ``ir``."""
    return RewriteEnv(backend, ir)


class Checker(abc.ABC):
    """A condition a rewrite needs; subclass it and implement :meth:`check`."""

    @abc.abstractmethod
    def check(self, env: RewriteEnv) -> bool:
        """True when the rewrite may apply in ``env``."""


class BackendChecker(Checker):
    """Applies only when the context's backend is ``required_backend`` (compared by value)."""

    def __init__(self, required_backend: NameLike) -> None:
        self.required_backend = as_name(required_backend, Backend, 'required_backend')

    def check(self, env: RewriteEnv) -> bool:
        return env['backend'] == self.required_backend

    def __repr__(self) -> str:
        return f'BackendChecker({self.required_backend!r})'


class IRChecker(Checker):
    """Applies only when the context's IR is ``required_ir`` (compared by value)."""

    def __init__(self, required_ir: NameLike) -> None:
        self.required_ir = as_name(required_ir, IR, 'required_ir')

    def check(self, env: RewriteEnv) -> bool:
        return env['ir'] == self.required_ir

    def __repr__(self) -> str:
        return f'IRChecker({self.required_ir!r})'


class LibVersionChecker(Checker):
    """Applies when distribution ``lib`` is installed with ``min_version <= version <=
    max_version`` (either bound optional, both inclusive, PEP 440 ordering)."""

    def __init__(self, lib: str, min_version: Optional[str] = None,
                 max_version: Optional[str] = None) -> None:
        if not isinstance(lib, str) or not lib:
            raise RewriterError(f'LibVersionChecker: lib must be a distribution name, got {lib!r}')
        self.lib = lib
        self.min_version = min_version
        self.max_version = max_version
        self._bounds = tuple(None if bound is None else _parse(bound, f'LibVersionChecker({lib!r})')
                             for bound in (min_version, max_version))

    def check(self, env: RewriteEnv) -> bool:
        installed = env[self.lib]
        if installed is None:
            return False
        version = _parse(installed, f'installed {self.lib}')
        low, high = self._bounds
        return (low is None or version >= low) and (high is None or version <= high)

    def __repr__(self) -> str:
        return (f'LibVersionChecker({self.lib!r}, min_version={self.min_version!r}, '
                f'max_version={self.max_version!r})')


def _parse(text: str, what: str) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion as err:
        raise RewriterError(f'{what}: {text!r} is not a PEP 440 version') from err
