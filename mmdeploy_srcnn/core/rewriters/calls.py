"""What a running rewriter can ask about its call, tracked with a ``ContextVar``.

A ``ContextVar`` (not stack-frame inspection) holds the stack of rewriters currently running in
this thread or task, so ``get_context()`` is cheap, thread-safe and works in nested calls.
"""
import contextvars
import dataclasses
from typing import Any, Callable, Mapping, Optional, Tuple

from .patching import RewriterError


@dataclasses.dataclass(frozen=True)
class RewriteCall:
    """The context of one rewriter call.

    Attributes:
        origin_func: what the target was before the context patched it; call it to fall back.
        cfg: the deploy config given to the context (or ``None``).
        backend: the context's backend.
        ir: the context's intermediate representation.
        extra: the context's extra keywords merged with the record's (the context's win).
        token: identifies the patch this call came through (used to detect re-entry).
    """

    origin_func: Callable
    cfg: Any
    backend: str
    ir: str
    extra: Mapping[str, Any]
    token: object


_ACTIVE: contextvars.ContextVar[Tuple[RewriteCall, ...]] = contextvars.ContextVar(
    'mmdeploy_srcnn_rewrite_calls', default=())


def current_call() -> RewriteCall:
    """The innermost running rewriter call; raises outside a rewriter."""
    calls = _ACTIVE.get()
    if not calls:
        raise RewriterError('FUNCTION_REWRITER.get_context() was called outside a rewriter: '
                            'it is only valid while a registered rewriter runs inside an open '
                            'RewriterContext')
    return calls[-1]


def find_active(token: object) -> Optional[RewriteCall]:
    """The running call that came through the patch ``token``, if any (re-entry check)."""
    for call in _ACTIVE.get():
        if call.token is token:
            return call
    return None


def run_call(call: RewriteCall, rewriter: Callable, args: tuple, kwargs: dict) -> Any:
    """Run ``rewriter`` with ``call`` visible to ``get_context()``."""
    reset = _ACTIVE.set(_ACTIVE.get() + (call,))
    try:
        return rewriter(*args, **kwargs)
    finally:
        _ACTIVE.reset(reset)
