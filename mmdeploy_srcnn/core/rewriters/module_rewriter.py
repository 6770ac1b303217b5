"""Module rewrites: replace submodules of a *copy* of a model by rewrite classes.

``patch_model`` deep-copies the model, then walks it children first and replaces every
submodule whose class *is* a registered target (exact class, by the target's dotted path) with
``RewriteClass(module, cfg, **keywords)``. Subclasses of a registered class are not replaced: a
subclass may override exactly what the rewrite assumes, so each one met is named in a warning
(register its own path to rewrite it). The caller's model is never changed.

The original's ``__init__`` arguments: PyTorch modules do not keep them, and reading attributes
of the same names is unsound (``nn.Conv2d(bias=True)`` keeps a Parameter named ``bias``;
mmagic's SRCNN keeps no ``channels``). So they are recorded, exactly, when the model is built
inside :meth:`ModuleRewriter.record_init_args`, which wraps each registered class's
``__init__`` while it is open. A rewrite class receives them as keyword arguments it declares
(all of them if it takes ``**kwargs``); where they were not recorded, a rewrite that declares a
parameter of the original's ``__init__`` is refused rather than left to its default.
"""
import contextlib
import copy
import functools
import inspect
import warnings
import weakref
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Set, Tuple

from torch import nn

from .checkers import collect_env
from .constants import IR, Backend, NameLike
from .deploy_cfg import as_config
from .patching import (PATCH_LOCK, MissingTargetWarning, RewriterError, TargetNotInstalled, replace,
                       resolve, restore_all)
from .records import RewriteRecord, RewriterRegistry, check_keywords, qualname

_REGISTER_PARAMETERS = ('module_type', 'backend', 'ir', 'extra_checkers')
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class ModuleRewriter:
    """Records replacement classes for module classes named by dotted paths."""

    def __init__(self) -> None:
        self._registry = RewriterRegistry('module rewriter')
        self._init_args: 'weakref.WeakKeyDictionary[nn.Module, Dict[str, Any]]' = \
            weakref.WeakKeyDictionary()

    def register_rewrite_module(self, module_type: str, backend: NameLike = Backend.DEFAULT,
                                ir: NameLike = IR.DEFAULT, extra_checkers: Any = None,
                                **kwargs: Any) -> Callable[[type], type]:
        """Decorator: the decorated class replaces instances of ``module_type`` in
        :meth:`patch_model`, where ``backend``, ``ir`` and ``extra_checkers`` apply.

        The class is built as ``cls(original_module, cfg, **keywords)`` (module docs). Module
        rewrites have no context object, so any other keyword is an error.
        """
        check_keywords(kwargs, _REGISTER_PARAMETERS, f'register_rewrite_module({module_type!r})',
                       allow_free=False)

        def check(rewrite_cls: Any) -> None:
            if not isinstance(rewrite_cls, type):
                raise RewriterError(f'register_rewrite_module({module_type!r}): '
                                    f'{rewrite_cls!r} is not a class')

        return self._registry.decorator(module_type, backend, ir, extra_checkers, {},
                                        check=check)

    def records(self) -> List[RewriteRecord]:
        """All records, in registration order."""
        return self._registry.records()

    @contextlib.contextmanager
    def record_init_args(self) -> Iterator[None]:
        """While open, each instance of a registered target class built (of exactly that
        class) remembers its ``__init__`` arguments, defaults applied, for :meth:`patch_model`.

        Build the model inside it: ``with MODULE_REWRITER.record_init_args(): model =
        build(cfg)``. The classes are patched process-wide while it is open, under the same lock
        as ``RewriterContext``, and restored exactly on exit.
        """
        undo: List[Any] = []
        with PATCH_LOCK:
            try:
                recorded: Set[type] = set()
                for record in self.records():
                    cls = _target_class(record)
                    if cls is None or cls in recorded:
                        continue
                    recorded.add(cls)
                    init = resolve(f'{record.func_name}.__init__')
                    undo.append(replace(init, self._recorder(cls, init.value)))
                yield
            finally:
                restore_all(undo)

    def patch_model(self, model: nn.Module, cfg: Any = None, backend: NameLike = Backend.DEFAULT,
                    ir: NameLike = IR.ONNX, recursive: bool = True, **kwargs: Any) -> nn.Module:
        """A deep copy of ``model`` with matching submodules replaced (module docs).

        Args:
            model: the model; it is not changed.
            cfg: the deploy config, passed to each rewrite class as a ``Config``.
            backend, ir: select the rewrites, as a ``RewriterContext`` does.
            recursive: also replace submodules (``False``: only ``model`` itself).
            kwargs: extra keyword arguments for the rewrite classes (each gets those it
                declares); one that is also a recorded ``__init__`` argument is an error.

        Returns the copy (or the rewrite that replaced ``model`` itself).
        """
        cfg = as_config(cfg)
        env = collect_env(backend, ir)
        # Records compete by class, not by path: a class and its package's re-export are one
        # target, so the most specific record wins and a tie names both paths.
        classes: Dict[str, Optional[type]] = {}

        def identify(record: RewriteRecord) -> Optional[type]:
            if record.func_name not in classes:
                classes[record.func_name] = _target_class(record)
            return classes[record.func_name]

        rewrites = {classes[record.func_name]: record
                    for record in self._registry.select(env, identify)}
        try:
            patched = copy.deepcopy(model)
        except Exception as err:
            raise RewriterError(f'patch_model: cannot deep-copy the model: {err}') from err
        rewrite_classes = tuple(record.rewriter for record in rewrites.values())
        memo: Dict[int, nn.Module] = {}
        subclasses: Set[Tuple[type, type]] = set()

        def visit(original: nn.Module, copied: nn.Module, name: str) -> nn.Module:
            if id(copied) in memo:
                return memo[id(copied)]
            result = copied
            if not isinstance(copied, rewrite_classes):  # else it was patched before
                if recursive:
                    for child_name, child in list(copied._modules.items()):
                        if child is not None:
                            setattr(copied, child_name,
                                    visit(original._modules[child_name], child,
                                          f'{name}.{child_name}' if name else child_name))
                record = rewrites.get(type(copied))
                if record is not None:
                    result = self._construct(record, original, copied, name or '<model>', cfg,
                                             kwargs)
                else:
                    subclasses.update((type(copied), base) for base in rewrites
                                      if isinstance(copied, base))
            memo[id(copied)] = result
            return result

        result = visit(model, patched, '')
        for subclass, base in sorted(subclasses, key=lambda pair: qualname(pair[0])):
            warnings.warn(f'{qualname(subclass)} is a subclass of {qualname(base)}, which has a '
                          'module rewrite; subclasses are not replaced (register '
                          f'{qualname(subclass)!r} to rewrite it)', stacklevel=2)
        return result

    def _recorder(self, cls: type, init: Callable) -> Callable:
        signature = inspect.signature(init)
        store = self._init_args

        @functools.wraps(init)
        def __init__(module: nn.Module, *args: Any, **kwargs: Any) -> None:
            if type(module) is cls:  # a subclass's own arguments are not these
                try:
                    bound = signature.bind(module, *args, **kwargs)
                except TypeError:
                    pass  # the real __init__ raises the error
                else:
                    bound.apply_defaults()
                    store[module] = _arguments(bound)
            init(module, *args, **kwargs)

        return __init__

    def _construct(self, record: RewriteRecord, original: nn.Module, copied: nn.Module,
                   name: str, cfg: Any, kwargs: Mapping[str, Any]) -> nn.Module:
        rewrite_cls = record.rewriter
        where = f'patch_model: {name} ({qualname(type(copied))} -> {qualname(rewrite_cls)})'
        signature = inspect.signature(rewrite_cls)
        parameters = list(signature.parameters.values())
        slots = {p.name for p in parameters[:2]}
        declared = {p.name for p in parameters[2:] if p.kind in _KEYWORD_KINDS}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        recorded = self._init_args.get(original)
        if recorded is None:
            original_parameters = set(inspect.signature(type(original)).parameters)
            unrecorded = sorted(declared & original_parameters)
            if unrecorded:
                raise RewriterError(
                    f'{where}: the rewrite takes the original\'s __init__ argument(s) '
                    f'{", ".join(unrecorded)}, which were not recorded; build the model inside '
                    'MODULE_REWRITER.record_init_args()')
            recorded = {}
        clash = sorted(set(recorded) & set(kwargs))
        if clash:
            raise RewriterError(f'{where}: keyword(s) {", ".join(clash)} given to patch_model '
                                'are also recorded __init__ arguments of the original')
        keywords = {key: value for key, value in {**recorded, **kwargs}.items()
                    if key not in slots and (takes_any or key in declared)}
        try:
            signature.bind(copied, cfg, **keywords)
        except TypeError as err:
            arguments = ', '.join(['module', 'cfg', *(f'{key}=...' for key in keywords)])
            raise RewriterError(f'{where}: cannot call {rewrite_cls.__name__}({arguments}): '
                                f'{err}') from err
        return rewrite_cls(copied, cfg, **keywords)


def _target_class(record: RewriteRecord) -> Optional[type]:
    """The class ``record`` targets, or ``None`` (with a warning) if its package is missing."""
    try:
        cls = resolve(record.func_name).value
    except TargetNotInstalled as err:
        warnings.warn(str(err), MissingTargetWarning, stacklevel=4)
        return None
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise RewriterError(f'module rewrite target {record.func_name!r} is not an nn.Module '
                            f'class: {cls!r}')
    return cls


def _arguments(bound: inspect.BoundArguments) -> Dict[str, Any]:
    """Bound ``__init__`` arguments by name, without ``self``; ``**kwargs`` spread out."""
    parameters = bound.signature.parameters
    arguments: Dict[str, Any] = {}
    for index, (name, value) in enumerate(bound.arguments.items()):
        if index == 0:
            continue  # self
        if parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(value)
        else:
            arguments[name] = value
    return arguments
