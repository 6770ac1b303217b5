"""Function rewrites: replace a function or method, and its module-level aliases, in a context."""
import functools
import warnings
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from .calls import RewriteCall, current_call, find_active, run_call
from .checkers import RewriteEnv, collect_env
from .constants import IR, Backend, NameLike
from .patching import (MissingTargetWarning, Patch, RewriterError, Target, TargetNotInstalled,
                       iter_module_aliases, replace, replace_aliases, resolve)
from .records import RewriteRecord, RewriterRegistry, check_keywords, qualname

_REGISTER_PARAMETERS = ('func_name', 'backend', 'ir', 'extra_checkers')


class FunctionRewriter:
    """Records rewrites of functions and methods named by dotted paths.

    Registering only records; nothing is patched until a ``RewriterContext`` opens. Records are
    kept in registration order, which is also the order in which a context patches them.
    """

    def __init__(self) -> None:
        self._registry = RewriterRegistry('function rewriter')

    def register_rewriter(self, func_name: str, backend: NameLike = Backend.DEFAULT,
                          ir: NameLike = IR.DEFAULT, extra_checkers: Any = None,
                          **kwargs: Any) -> Callable[[Callable], Callable]:
        """Decorator: record the decorated function as the rewrite of ``func_name``.

        Args:
            func_name: dotted path of the target, e.g. ``'torch.nn.functional.interpolate'``,
                ``'torch.Tensor.repeat'`` or ``'mypkg.models.Net.forward'``.
            backend: the backend this rewrite is for (a string or :class:`Backend`);
                ``'default'`` matches every backend.
            ir: the IR this rewrite is for (a string or :class:`IR`); ``'default'`` matches
                every IR.
            extra_checkers: a :class:`Checker` or a list of them; all must pass.
            kwargs: keywords the rewrite reads as attributes of ``get_context()``. Reserved or
                misspelled-looking names are refused (:func:`check_keywords`).

        Returns the function unchanged, so decorators stack (one function, several targets).
        """
        check_keywords(kwargs, _REGISTER_PARAMETERS, f'register_rewriter({func_name!r})')

        def check(rewriter: Any) -> None:
            if not callable(rewriter):
                raise RewriterError(f'register_rewriter({func_name!r}): {rewriter!r} '
                                    'is not callable')

        return self._registry.decorator(func_name, backend, ir, extra_checkers, kwargs,
                                        check=check)

    def unregister_rewriter(self, func_name: str, backend: NameLike = Backend.DEFAULT,
                            ir: NameLike = IR.DEFAULT) -> RewriteRecord:
        """Remove and return a record (for tests and for replacing a shipped rewrite)."""
        return self._registry.remove(func_name, backend, ir)

    def records(self) -> List[RewriteRecord]:
        """All records, in registration order."""
        return self._registry.records()

    def select(self, backend: NameLike, ir: NameLike) -> List[RewriteRecord]:
        """The records a context for ``backend`` and ``ir`` applies: one per target."""
        return [record for record, _ in self._resolve_selected(collect_env(backend, ir))]

    @staticmethod
    def get_context(key: Optional[str] = None) -> RewriteCall:
        """The context of the running function rewrite: ``origin_func``, ``cfg``, ...

        With ``key`` (a target path or a rewriter's ``module.qualname``), the innermost running
        rewrite of that name: for a rewriter that calls another rewritten function and wants
        its own context back. Raises :class:`RewriterError` outside a rewriter.
        """
        return current_call('function', key)

    def apply(self, context: Any, env: RewriteEnv, undo: List[Patch]) -> None:
        """Patch every selected target and its module aliases, recording each patch in
        ``undo`` as it is made (``context`` is the opening ``RewriterContext``)."""
        for record, target in self._resolve_selected(env):
            wrapper = _make_wrapper(context, record, target.value)
            undo.append(replace(target, wrapper))
            undo.extend(replace_aliases(target.value, wrapper, skip=target.owner))
            undo.append(_LateAliases(wrapper, target.value))

    def _resolve_selected(self, env: RewriteEnv) -> List[Tuple[RewriteRecord, Target]]:
        """The selected records with their resolved targets.

        Records compete by the object they replace, not by path: two paths of one function
        (``torch.nn.functional.interpolate``, ``torch.nn.modules.upsampling.F.interpolate``) or
        of one method (a class re-exported by its package) are one target, so the most specific
        of their records wins and a tie is an error naming both paths. A target in a package
        that is not installed is skipped with a :class:`MissingTargetWarning`.
        """
        targets: Dict[str, Optional[Target]] = {}

        def identify(record: RewriteRecord) -> Optional[Hashable]:
            if record.func_name not in targets:
                targets[record.func_name] = _resolve_callable(record.func_name)
            target = targets[record.func_name]
            return None if target is None else _identity(target)

        return [(record, targets[record.func_name])
                for record in self._registry.select(env, identify)]


def _resolve_callable(path: str) -> Optional[Target]:
    """``resolve(path)``, ``None`` (warned) when its package is not installed; a target that is
    not callable is an error (a function rewrite stands in for a call)."""
    try:
        target = resolve(path)
    except TargetNotInstalled as err:
        warnings.warn(str(err), MissingTargetWarning, stacklevel=2)
        return None
    if not callable(target.value):
        raise RewriterError(f'function rewrite target {path!r} is not callable: it is '
                            f'{type(target.value).__name__} {target.value!r}; function '
                            'rewriters replace functions and methods only')
    return target


def _identity(target: Target) -> Hashable:
    """What a patch of ``target`` replaces: a class attribute is its class and name (a
    subclass's inherited method is its own target); a module attribute is the object itself,
    since every module-level alias of it is patched too."""
    if isinstance(target.owner, type):
        return 'class attribute', id(target.owner), target.name
    return 'object', id(target.value)


def _make_wrapper(context: Any, record: RewriteRecord, origin: Callable) -> Callable:
    token = object()
    call = RewriteCall(origin_func=origin, cfg=context.cfg, backend=context.backend,
                       ir=context.ir, keywords=context.keywords_for(record), kind='function',
                       keys=frozenset({record.func_name, qualname(record.rewriter)}),
                       token=token)

    @functools.wraps(origin)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Outside the context (a reference kept past exit) or re-entered from inside this very
        # rewrite (origin_func calling the patched name): run the original.
        if not context.active or find_active(token) is not None:
            return origin(*args, **kwargs)
        return run_call(call, record.rewriter, args, kwargs)

    return wrapper


class _LateAliases:
    """Undo for aliases made while the context was open: a module imported inside it may
    have copied the wrapper into its globals (``from torch.nn.functional import
    interpolate``); point those back to the original too."""

    def __init__(self, wrapper: Callable, original: Any) -> None:
        self._wrapper = wrapper
        self._original = original

    def restore(self) -> None:
        for module, name in iter_module_aliases(self._wrapper, skip=None):
            setattr(module, name, self._original)
