"""Rewrite records, how a context selects among them, and which keywords are refused.

Selection, shared by function, module and symbolic rewrites: a record *applies* in an
environment when its backend and IR are the environment's or ``'default'`` (the wildcard) and
every extra checker passes. Of the records of one target that apply, the most specific wins,
ranked by (backend given, IR given, has extra checkers) in that order. Two applying records of
equal rank are an error naming both: never a silent pick by registration order. A target is the
object a path names where the kind of rewrite resolves paths (function and module rewrites), so
two import paths of one function or class compete as one target.
"""
import dataclasses
import difflib
import threading
from types import MappingProxyType
from typing import (Any, Callable, Collection, Dict, Hashable, Iterable, List, Mapping, Optional,
                    Tuple)

from .checkers import Checker, RewriteEnv
from .constants import DEFAULT, IR, Backend, NameLike, as_name
from .patching import RewriterError

# Attributes every rewrite context has: a keyword may not shadow them.
RESERVED_ATTRIBUTES = ('origin_func', 'cfg', 'backend', 'ir', 'opset')


@dataclasses.dataclass(frozen=True)
class RewriteRecord:
    """One registration: ``rewriter`` stands in for ``func_name`` where it applies.

    ``extra`` holds the registration keywords a rewrite reads from its context; ``options``
    the settings of one kind of rewrite (a symbolic's minimum opset and argument descriptors).
    """

    func_name: str
    backend: str
    ir: str
    rewriter: Any
    checkers: Tuple[Checker, ...] = ()
    extra: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    options: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def applies(self, env: RewriteEnv) -> bool:
        """Backend and IR match (or are ``'default'``) and every extra checker passes."""
        if self.backend not in (DEFAULT, env.backend) or self.ir not in (DEFAULT, env.ir):
            return False
        for checker in self.checkers:
            try:
                passed = checker.check(env)
            except Exception as err:
                raise RewriterError(f'{checker!r} of the rewrite of {self.func_name!r} '
                                    f'({qualname(self.rewriter)}) failed: {err}') from err
            if not passed:
                return False
        return True

    @property
    def rank(self) -> Tuple[bool, bool, bool]:
        return self.backend != DEFAULT, self.ir != DEFAULT, bool(self.checkers)

    def describe(self) -> str:
        checkers = f', extra_checkers={list(self.checkers)}' if self.checkers else ''
        return (f'{qualname(self.rewriter)} (backend={self.backend!r}, ir={self.ir!r}'
                f'{checkers})')


class RewriterRegistry:
    """Records of one kind of rewrite, in registration order, safe to use from threads."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._records: List[RewriteRecord] = []
        self._lock = threading.Lock()

    def decorator(self, func_name: str, backend: NameLike, ir: NameLike, extra_checkers: Any,
                  extra: Mapping[str, Any], options: Optional[Mapping[str, Any]] = None,
                  check: Optional[Callable[[Any], None]] = None) -> Callable[[Any], Any]:
        """Validate a registration now; return the decorator that adds the decorated object
        (after ``check(obj)``) and returns it unchanged."""
        if not isinstance(func_name, str) or not func_name:
            raise RewriterError(f'{self.kind}: the target must be a non-empty string, '
                                f'got {func_name!r}')
        where = f'{self.kind} of {func_name!r}'
        template = RewriteRecord(func_name, as_name(backend, Backend, f'{where}: backend'),
                                 as_name(ir, IR, f'{where}: ir'), None,
                                 _as_checkers(extra_checkers, self.kind),
                                 MappingProxyType(dict(extra)),
                                 MappingProxyType(dict(options or {})))

        def register(obj: Any) -> Any:
            if check is not None:
                check(obj)
            self._add(dataclasses.replace(template, rewriter=obj))
            return obj

        return register

    def _add(self, record: RewriteRecord) -> None:
        """Add ``record``; a second checker-less record for the same target, backend and IR is
        an error naming both rewriters (records with extra checkers are told apart later)."""
        with self._lock:
            for existing in self._records:
                if (existing.func_name, existing.backend, existing.ir) == (
                        record.func_name, record.backend, record.ir) \
                        and not existing.checkers and not record.checkers:
                    raise RewriterError(
                        f'a {self.kind} for {record.func_name!r} (backend={record.backend!r}, '
                        f'ir={record.ir!r}) is already registered: {qualname(existing.rewriter)}'
                        f'; refusing to register {qualname(record.rewriter)} as well')
            self._records.append(record)

    def remove(self, func_name: str, backend: NameLike, ir: NameLike) -> RewriteRecord:
        """Remove and return the one record of ``func_name`` for ``backend`` and ``ir``."""
        key = (func_name, as_name(backend, Backend, 'backend'), as_name(ir, IR, 'ir'))
        with self._lock:
            found = [r for r in self._records if (r.func_name, r.backend, r.ir) == key]
            if len(found) != 1:
                what = 'no' if not found else f'{len(found)} (told apart by checkers)'
                raise RewriterError(f'{what} {self.kind}s registered for {key[0]!r} '
                                    f'(backend={key[1]!r}, ir={key[2]!r}); can remove exactly one')
            self._records.remove(found[0])
            return found[0]

    def records(self) -> List[RewriteRecord]:
        """All records, in registration order."""
        with self._lock:
            return list(self._records)

    def select(self, env: RewriteEnv,
               identify: Optional[Callable[[RewriteRecord], Optional[Hashable]]] = None
               ) -> List[RewriteRecord]:
        """The records that apply in ``env``: the most specific one per target (module docs).

        ``identify(record)`` says which target a record replaces (``None``: skip the record):
        records whose paths name one object (aliases) then compete as one target. Without it,
        the dotted path is the target.
        """
        by_target: Dict[Hashable, List[RewriteRecord]] = {}
        for record in self.records():
            if record.applies(env):
                key = record.func_name if identify is None else identify(record)
                if key is not None:
                    by_target.setdefault(key, []).append(record)
        chosen = []
        for candidates in by_target.values():
            best = max(record.rank for record in candidates)
            winners = [record for record in candidates if record.rank == best]
            if len(winners) > 1:
                paths = list(dict.fromkeys(record.func_name for record in winners))
                target = repr(paths[0]) if len(paths) == 1 else \
                    f'one target, named {" and ".join(map(repr, paths))}'
                raise RewriterError(
                    f'{len(winners)} {self.kind}s of {target} apply to backend='
                    f'{env.backend!r}, ir={env.ir!r} with the same precedence: '
                    f'{"; ".join(f"{r.func_name!r}: {r.describe()}" for r in winners)}. Give one '
                    'a more specific backend, ir or extra_checkers, or unregister one')
            chosen.append(winners[0])
        return chosen


def _as_checkers(extra_checkers: Any, kind: str) -> Tuple[Checker, ...]:
    if extra_checkers is None:
        return ()
    checkers = (extra_checkers,) if isinstance(extra_checkers, Checker) else extra_checkers
    try:
        checkers = tuple(checkers)
    except TypeError:
        checkers = (checkers,)
    for checker in checkers:
        if not isinstance(checker, Checker):
            raise RewriterError(f'{kind}: extra_checkers must be Checker instances, got '
                                f'{checker!r}')
    return checkers


def near_miss(name: str, candidates: Iterable[str]) -> Optional[str]:
    """The candidate ``name`` was probably meant to be, if any.

    A near miss is a case-insensitive match, a ``difflib`` similarity of at least 0.75
    (``backends``/``backend``, ``extra_checker``/``extra_checkers``), or an underscore-separated
    word sequence that starts or ends with the candidate's (``opset_version``/``opset``,
    ``deploy_cfg``/``cfg``, ``checkers``/``extra_checkers``).
    """
    words = name.lower().split('_')
    for candidate in candidates:
        theirs = candidate.lower().split('_')
        shorter, longer = sorted((words, theirs), key=len)
        if (name.lower() == candidate.lower()
                or longer[:len(shorter)] == shorter or longer[-len(shorter):] == shorter):
            return candidate
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return close[0] if close else None


def check_keywords(keywords: Mapping[str, Any], parameters: Collection[str], where: str,
                   allow_free: bool = True) -> None:
    """Refuse keywords that are reserved or that look like a misspelled parameter.

    A keyword is refused when it starts with ``_`` or names a context attribute
    (:data:`RESERVED_ATTRIBUTES`), when it is a :func:`near_miss` of one of ``parameters`` or of
    a context attribute, or, with ``allow_free=False``, always. The error names the keyword and
    the valid name it was probably meant to be.
    """
    known = [*parameters, *RESERVED_ATTRIBUTES]
    for name in keywords:
        if name.startswith('_') or name in RESERVED_ATTRIBUTES:
            raise RewriterError(f'{where}: keyword {name!r} is reserved (a rewrite context has '
                                f'{", ".join(RESERVED_ATTRIBUTES)} of its own)')
        guess = near_miss(name, known)
        if guess is not None:
            raise RewriterError(f'{where}: unknown keyword {name!r}; did you mean {guess!r}?')
        if not allow_free:
            raise RewriterError(f'{where}: unknown keyword {name!r} (valid: '
                                f'{", ".join(parameters)})')


def qualname(func: Callable) -> str:
    """``module.qualname`` of a function or class, for messages and ``get_context`` keys."""
    return f'{getattr(func, "__module__", "?")}.{getattr(func, "__qualname__", repr(func))}'
