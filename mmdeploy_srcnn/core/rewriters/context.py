"""``RewriterContext``: patch the selected rewrites on entry, restore them on exit.

Patching replaces module and class attributes, which is process-global: while a context is open
every thread sees the rewrites. A re-entrant lock therefore serialises contexts: a second thread
that opens one waits until the first has closed. Nested contexts in one thread are allowed; the
inner one wraps what the outer one installed and restores it on exit.
"""
import functools
import threading
from typing import Any, Callable, List, Tuple

from .calls import RewriteCall, find_active, run_call
from .patching import Patch, RewriterError, Target, iter_module_aliases, replace, \
    replace_aliases, resolve
from .registry import FUNCTION_REWRITER, FunctionRewriter, RewriteRecord

_PATCH_LOCK = threading.RLock()


class RewriterContext:
    """Apply the rewrites selected for ``backend`` and ``ir`` while the ``with`` block runs.

    Args:
        cfg: the deploy config, visible to rewriters as ``get_context().cfg``.
        backend: a rewrite registered for this backend wins over the ``'default'`` one.
        ir: the intermediate representation the rewrites target (``'onnx'``).
        registry: where the rewrites come from (the global ``FUNCTION_REWRITER`` by default).
        extra: keywords visible to rewriters as ``get_context().extra``.

    Every patch is recorded and undone in reverse order in ``__exit__`` (also when the body
    raises, or when entering fails half way), so afterwards every target and module-level alias
    is the very object it was before.
    """

    def __init__(self, cfg: Any = None, backend: str = 'default', ir: str = 'onnx', *,
                 registry: FunctionRewriter = FUNCTION_REWRITER, **extra: Any) -> None:
        self.cfg = cfg
        self.backend = backend
        self.ir = ir
        self.extra = dict(extra)
        self._registry = registry
        self._patches: List[Patch] = []
        self._wrappers: List[Tuple[Callable, Target]] = []
        self._active = False

    def __enter__(self) -> 'RewriterContext':
        if self._active:
            raise RewriterError('this RewriterContext is already open; create a new one')
        _PATCH_LOCK.acquire()
        try:
            self._active = True
            for record in self._registry.select(self.backend, self.ir):
                self._apply(record)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._active:
            self._close()

    def _apply(self, record: RewriteRecord) -> None:
        target = resolve(record.func_name)
        wrapper = self._make_wrapper(record, target)
        self._patches.append(replace(target, wrapper))
        self._wrappers.append((wrapper, target))
        self._patches.extend(replace_aliases(target.value, wrapper, skip=target.owner))

    def _make_wrapper(self, record: RewriteRecord, target: Target) -> Callable:
        origin = target.value
        token = object()
        call = RewriteCall(origin_func=origin, cfg=self.cfg, backend=self.backend, ir=self.ir,
                           extra={**record.extra, **self.extra}, token=token)

        @functools.wraps(origin)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # Outside the context (a reference kept past exit) or re-entered from inside this
            # very rewrite (origin_func calling the patched name): run the original.
            if not self._active or find_active(token) is not None:
                return origin(*args, **kwargs)
            return run_call(call, record.rewriter, args, kwargs)

        return wrapper

    def _close(self) -> None:
        """Undo every patch in reverse order, then release the lock; raise the first failure."""
        errors: List[BaseException] = []
        try:
            for patch in reversed(self._patches):
                try:
                    patch.restore()
                except Exception as err:  # keep restoring the others
                    errors.append(err)
            # Modules imported while the context was open may have copied a wrapper into their
            # globals (``from torch.nn.functional import interpolate``): point them back too.
            for wrapper, target in reversed(self._wrappers):
                for module, name in iter_module_aliases(wrapper, skip=None):
                    setattr(module, name, target.value)
        finally:
            self._patches.clear()
            self._wrappers.clear()
            self._active = False
            _PATCH_LOCK.release()
        if errors:
            raise RewriterError(f'could not restore {len(errors)} patched attribute(s); first: '
                                f'{errors[0]}') from errors[0]

    @property
    def patched_count(self) -> int:
        """How many attributes (targets and aliases) are currently patched by this context."""
        return len(self._patches)
