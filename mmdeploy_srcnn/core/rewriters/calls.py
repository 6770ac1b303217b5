"""What a running rewrite sees through ``get_context()``, tracked with a ``ContextVar``.

A ``ContextVar`` (not stack-frame inspection) holds the stack of rewrites currently running in
this thread or task, so ``get_context()`` is cheap, thread-safe and right in nested calls.
"""
import contextvars
from typing import Any, Callable, FrozenSet, Mapping, Optional, Tuple

from .patching import RewriterError

_ACTIVE: contextvars.ContextVar[Tuple['RewriteCall', ...]] = contextvars.ContextVar(
    'mmdeploy_srcnn_rewrite_calls', default=())


class RewriteCall:
    """The context of one rewrite call (MMDeploy's ``ContextCaller``), read-only.

    Attributes:
        origin_func: what the target was before the context replaced it; call it to fall back.
            For a TorchScript symbolic, the symbolic torch would otherwise have used at this
            opset (``None`` if none); for a dynamo translation, ``None``.
        cfg: the deploy config, always an mmengine ``Config`` (empty when none was given).
        backend: the context's backend name.
        ir: the context's IR name.
        <keyword>: every registration keyword and every extra ``RewriterContext`` keyword, and
            ``opset`` (the export's opset) where known.

    Reading an attribute it does not have raises ``AttributeError`` listing those it has, so
    ``hasattr(ctx, 'opset')`` and ``getattr(ctx, 'opset', 11)`` work as usual.
    """

    __slots__ = ('origin_func', 'cfg', 'backend', 'ir', '_keywords', '_kind', '_keys', '_token')

    def __init__(self, *, origin_func: Optional[Callable], cfg: Any, backend: str, ir: str,
                 keywords: Mapping[str, Any], kind: str, keys: FrozenSet[str],
                 token: object) -> None:
        values = dict(origin_func=origin_func, cfg=cfg, backend=backend, ir=ir,
                      _keywords=dict(keywords), _kind=kind, _keys=keys, _token=token)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the keywords, then a helpful error.
        keywords = object.__getattribute__(self, '_keywords')
        if name in keywords:
            return keywords[name]
        available = ', '.join(['origin_func', 'cfg', 'backend', 'ir', *sorted(keywords)])
        raise AttributeError(f'the rewrite context of {self._target} has no attribute '
                             f'{name!r}; it has: {available}')

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f'the rewrite context of {self._target} is read-only')

    @property
    def _target(self) -> str:
        return ' / '.join(sorted(object.__getattribute__(self, '_keys')))

    def __repr__(self) -> str:
        return f'RewriteCall({self._target}, backend={self.backend!r}, ir={self.ir!r})'


def current_call(kind: str, key: Optional[str]) -> RewriteCall:
    """The innermost running ``kind`` rewrite (whose target or rewriter name is ``key``)."""
    calls = [call for call in reversed(_ACTIVE.get()) if call._kind == kind]
    if not calls:
        raise RewriterError(f'get_context() was called outside a {kind} rewriter: it is only '
                            'valid while a registered rewriter runs inside an open '
                            'RewriterContext')
    if key is None:
        return calls[0]
    for call in calls:
        if key in call._keys:
            return call
    running = sorted({name for call in calls for name in call._keys})
    raise RewriterError(f'get_context({key!r}): no running {kind} rewriter has that target or '
                        f'name; running: {", ".join(running)}')


def find_active(token: object) -> Optional[RewriteCall]:
    """The running call that came through the patch ``token``, if any (re-entry check)."""
    for call in _ACTIVE.get():
        if call._token is token:
            return call
    return None


def run_call(call: RewriteCall, rewriter: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``rewriter`` with ``call`` visible to ``get_context()``."""
    reset = _ACTIVE.set(_ACTIVE.get() + (call,))
    try:
        return rewriter(*args, **kwargs)
    finally:
        _ACTIVE.reset(reset)
