"""The registry of function rewrites and how a context selects among them."""
import dataclasses
import threading
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Tuple

from .calls import RewriteCall, current_call
from .patching import RewriterError

DEFAULT_BACKEND = 'default'


@dataclasses.dataclass(frozen=True)
class RewriteRecord:
    """One registered rewrite: ``rewriter`` replaces ``func_name`` for ``backend`` and ``ir``."""

    func_name: str
    backend: str
    ir: str
    rewriter: Callable
    extra: Mapping[str, Any]

    @property
    def key(self) -> Tuple[str, str, str]:
        return self.func_name, self.backend, self.ir


class FunctionRewriter:
    """Records rewrites of functions and methods named by dotted paths.

    Registering only records; nothing is patched until a :class:`RewriterContext` opens. Records
    are kept in registration order, which is also the order in which a context patches them.
    """

    def __init__(self) -> None:
        self._records: Dict[Tuple[str, str, str], RewriteRecord] = {}
        self._lock = threading.Lock()

    def register_rewriter(self, func_name: str, backend: str = DEFAULT_BACKEND,
                          ir: str = 'onnx', **extra: Any) -> Callable[[Callable], Callable]:
        """Decorator: record the decorated function as the rewrite of ``func_name``.

        Args:
            func_name: dotted path of the target, e.g. ``'torch.nn.functional.interpolate'``,
                ``'torch.Tensor.repeat'`` or ``'mypkg.models.Net.forward'``.
            backend: the backend this rewrite is for; ``'default'`` applies to every backend
                that has no rewrite of its own for the same target.
            ir: the intermediate representation (``'onnx'``).
            extra: free-form keywords kept on the record.

        Returns the function unchanged. A second rewrite for the same ``(func_name, backend,
        ir)`` raises :class:`RewriterError` naming both functions.
        """
        for label, value in (('func_name', func_name), ('backend', backend), ('ir', ir)):
            if not isinstance(value, str) or not value:
                raise RewriterError(f'register_rewriter: {label} must be a non-empty string, '
                                    f'got {value!r}')

        def register(rewriter: Callable) -> Callable:
            if not callable(rewriter):
                raise RewriterError(f'register_rewriter({func_name!r}): {rewriter!r} '
                                    'is not callable')
            record = RewriteRecord(func_name, backend, ir, rewriter,
                                   MappingProxyType(dict(extra)))
            with self._lock:
                existing = self._records.get(record.key)
                if existing is not None:
                    raise RewriterError(
                        f'a rewriter for {func_name!r} (backend={backend!r}, ir={ir!r}) is '
                        f'already registered: {_qualname(existing.rewriter)}; refusing to '
                        f'register {_qualname(rewriter)} as well')
                self._records[record.key] = record
            return rewriter

        return register

    def unregister_rewriter(self, func_name: str, backend: str = DEFAULT_BACKEND,
                            ir: str = 'onnx') -> RewriteRecord:
        """Remove and return a record (for tests and for replacing a shipped rewrite)."""
        with self._lock:
            try:
                return self._records.pop((func_name, backend, ir))
            except KeyError:
                raise RewriterError(f'no rewriter registered for {func_name!r} '
                                    f'(backend={backend!r}, ir={ir!r})') from None

    def records(self) -> List[RewriteRecord]:
        """All records, in registration order."""
        with self._lock:
            return list(self._records.values())

    def select(self, backend: str, ir: str) -> List[RewriteRecord]:
        """The records a context for ``backend``/``ir`` applies: one per target.

        A record for ``backend`` wins over the ``'default'`` record of the same target.
        """
        chosen: Dict[str, RewriteRecord] = {}
        for record in self.records():
            if record.ir != ir or record.backend not in (backend, DEFAULT_BACKEND):
                continue
            current = chosen.get(record.func_name)
            if current is None or (record.backend == backend
                                   and current.backend == DEFAULT_BACKEND):
                chosen[record.func_name] = record
        return list(chosen.values())

    @staticmethod
    def get_context() -> RewriteCall:
        """The call being rewritten: ``origin_func``, ``cfg``, ``backend``, ``ir``, extras.

        Only valid inside a rewriter; raises :class:`RewriterError` elsewhere.
        """
        return current_call()


def _qualname(func: Callable) -> str:
    return f'{getattr(func, "__module__", "?")}.{getattr(func, "__qualname__", repr(func))}'


FUNCTION_REWRITER = FunctionRewriter()
