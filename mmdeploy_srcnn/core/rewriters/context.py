"""``RewriterContext``: apply the selected rewrites on entry, undo them on exit.

Patching replaces module and class attributes and registers TorchScript symbolics, which is
process-global: while a context is open every thread sees the rewrites. A re-entrant lock
therefore serialises contexts: a second thread that opens one waits until the first has closed.
Nested contexts in one thread are allowed; the inner one wraps what the outer one installed
and restores it on exit.
"""
from typing import Any, Dict, List, Optional

from torch import nn

from .checkers import collect_env
from .constants import IR, Backend, NameLike, as_name
from .deploy_cfg import as_config
from .function_rewriter import FunctionRewriter
from .module_rewriter import ModuleRewriter
from .patching import PATCH_LOCK, RewriterError, restore_all
from .records import RewriteRecord, check_keywords
from .symbolic_rewriter import DynamoTable, SymbolicRewriter


class RewriterManager:
    """The three rewriters a context applies: function, module and symbolic (as in MMDeploy).

    The package's rewrites live in :data:`REWRITER_MANAGER`; a fresh manager holds private,
    empty registries (tests, or isolating a set of rewrites).
    """

    def __init__(self) -> None:
        self.function_rewriter = FunctionRewriter()
        self.module_rewriter = ModuleRewriter()
        self.symbolic_rewriter = SymbolicRewriter()


REWRITER_MANAGER = RewriterManager()
FUNCTION_REWRITER = REWRITER_MANAGER.function_rewriter
MODULE_REWRITER = REWRITER_MANAGER.module_rewriter
SYMBOLIC_REWRITER = REWRITER_MANAGER.symbolic_rewriter

_CONTEXT_PARAMETERS = ('cfg', 'backend', 'ir', 'opset', 'rewriter_manager')


def patch_model(model: nn.Module, cfg: Any = None, backend: NameLike = Backend.DEFAULT,
                ir: NameLike = IR.ONNX, recursive: bool = True, **kwargs: Any) -> nn.Module:
    """:meth:`ModuleRewriter.patch_model` of :data:`MODULE_REWRITER`: a patched deep copy."""
    return MODULE_REWRITER.patch_model(model, cfg, backend, ir, recursive, **kwargs)


class RewriterContext:
    """Apply the rewrites selected for ``backend`` and ``ir`` while the ``with`` block runs.

    Args:
        cfg: the deploy config, visible to rewrites as ``get_context().cfg`` (an mmengine
            ``Config``; empty when ``None``).
        backend: the backend name or :class:`Backend` member; selects the rewrites.
        ir: the IR name or :class:`IR` member; selects the rewrites.
        opset: the ONNX opset of the export, visible as ``get_context().opset``; needed by
            :meth:`dynamo_translation_table` when a translation has a minimum opset.
        rewriter_manager: where the rewrites come from (:data:`REWRITER_MANAGER`).
        kwargs: further keywords visible as attributes of ``get_context()``. Reserved names,
            near misses of a parameter (``backends``, ``opset_version``) and names that a
            selected rewrite also registered are errors.

    Entering patches the selected function rewrites and registers the selected TorchScript
    symbolics; every step is recorded and undone in reverse order on exit (also when the body
    raises, or when entering fails half way), so afterwards every target, alias and symbolic
    is what it was before. Module rewrites are not applied here: use :func:`patch_model`.
    """

    def __init__(self, cfg: Any = None, backend: NameLike = Backend.DEFAULT,
                 ir: NameLike = IR.ONNX, *, opset: Optional[int] = None,
                 rewriter_manager: Optional[RewriterManager] = None, **kwargs: Any) -> None:
        check_keywords(kwargs, _CONTEXT_PARAMETERS, 'RewriterContext')
        if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int)
                                  or opset < 1):
            raise RewriterError(f'RewriterContext: opset must be a positive int or None, '
                                f'got {opset!r}')
        self.cfg = as_config(cfg)
        self.backend = as_name(backend, Backend, 'RewriterContext: backend')
        self.ir = as_name(ir, IR, 'RewriterContext: ir')
        self.opset = opset
        self.kwargs = dict(kwargs)
        if rewriter_manager is not None and not isinstance(rewriter_manager, RewriterManager):
            raise RewriterError(f'RewriterContext: rewriter_manager must be a RewriterManager, '
                                f'got {type(rewriter_manager).__name__}')
        self._manager = REWRITER_MANAGER if rewriter_manager is None else rewriter_manager
        self._undo: List[Any] = []
        self._translations: DynamoTable = {}
        self._active = False

    @property
    def active(self) -> bool:
        """Whether the context is open (its wrappers run the rewrites only then)."""
        return self._active

    def keywords_for(self, record: RewriteRecord) -> Dict[str, Any]:
        """The keywords a call of ``record`` sees: the record's, this context's, and ``opset``
        when the context has one."""
        clash = sorted(set(record.extra) & set(self.kwargs))
        if clash:
            name = clash[0]
            raise RewriterError(
                f'keyword {name!r} is given both by the registration of {record.describe()} '
                f'({record.extra[name]!r}) and by the RewriterContext ({self.kwargs[name]!r})')
        keywords = {**record.extra, **self.kwargs}
        if self.opset is not None:
            keywords['opset'] = self.opset
        return keywords

    def __enter__(self) -> 'RewriterContext':
        if self._active:
            raise RewriterError('this RewriterContext is already open; create a new one')
        PATCH_LOCK.acquire()
        try:
            self._active = True
            env = collect_env(self.backend, self.ir)
            self._manager.function_rewriter.apply(self, env, self._undo)
            self._translations = self._manager.symbolic_rewriter.apply(self, env, self._undo)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._active:
            self._close()

    def dynamo_translation_table(self) -> Dict[Any, Any]:
        """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)`` inside this
        context: the selected dynamo translations, by op overload.

        Raises :class:`RewriterError` if the context is not open, or if a translation has a
        minimum opset and the context was opened without ``opset``.
        """
        if not self._active:
            raise RewriterError('dynamo_translation_table() needs the RewriterContext open')
        if self.opset is None:
            bounded = sorted(f'{record.func_name} (opset >= {record.options["opset"]})'
                             for _, record in self._translations.values()
                             if record.options['opset'] is not None)
            if bounded:
                raise RewriterError('open the RewriterContext with opset=<the export opset>: '
                                    f'these translations have a minimum: {", ".join(bounded)}')
        return {op: translation for op, (translation, _) in self._translations.items()}

    def _close(self) -> None:
        """Undo everything in reverse order, then release the lock; raise the first failure."""
        try:
            restore_all(self._undo)
        finally:
            self._translations = {}
            self._active = False
            PATCH_LOCK.release()
