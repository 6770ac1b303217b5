"""Symbolic rewrites: how an op becomes ONNX, for both exporters, each with a minimum opset.

One registry serves both exporters, keyed by the op's qualified name (``'namespace::op'``; a
``torch.library`` custom op or an aten op):

* ``exporter='torchscript'`` (the default, MMDeploy's kind): a symbolic ``fn(g, *inputs,
  **attrs)``. While a context is open it is registered with
  ``torch.onnx.register_custom_op_symbolic`` at every opset the exporter can be asked for, so it
  wins over torch's own symbolic whatever the export opset; on exit it is unregistered and
  whatever was registered before is put back.
* ``exporter='dynamo'``: a translation ``fn(*inputs, **attrs)`` building onnxscript ops (the
  functions ``torch.onnx.export(..., dynamo=True, custom_translation_table=...)`` takes). An
  open context hands them out with ``RewriterContext.dynamo_translation_table()``, keyed by op
  overload (``'ns::op'`` means its ``default`` overload; ``'ns::op.overload'`` names one).

Both kinds run with ``get_context()`` available, and refuse (``RewriterError``) to emit an op
at an opset below the registered minimum when the exporter actually reaches that op: a
registration an export does not use never blocks it.
"""
import functools
import importlib
import re
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch.onnx import symbolic_helper

from .calls import RewriteCall, current_call, run_call
from .checkers import RewriteEnv
from .constants import IR, Backend, NameLike
from .patching import MissingTargetWarning, RewriterError, TargetNotInstalled
from .records import RewriteRecord, RewriterRegistry, check_keywords, near_miss, qualname

EXPORTERS = ('torchscript', 'dynamo')
# Each opset the TorchScript exporter accepts (7..20) and later ONNX releases: a custom
# registration at each one shadows torch's built-in symbolic at any export opset.
_TORCHSCRIPT_OPSETS = range(7, 24)
_TORCH_NAMESPACES = ('aten', 'prims')  # always loaded: an unknown op there is a typo
_OP_NAME = re.compile(r'^(?P<ns>[A-Za-z0-9_-]+)::(?P<op>[A-Za-z_][A-Za-z0-9_]*)'
                      r'(?:\.(?P<overload>[A-Za-z0-9_]+))?$')
_REGISTER_PARAMETERS = ('func_name', 'backend', 'is_pytorch', 'arg_descriptors', 'ir',
                        'extra_checkers', 'opset', 'exporter')

DynamoTable = Dict[Any, Tuple[Callable, RewriteRecord]]


class SymbolicRewriter:
    """Records how ops are exported to ONNX, per exporter, backend and IR."""

    def __init__(self) -> None:
        self._registries = {'torchscript': RewriterRegistry('TorchScript symbolic'),
                            'dynamo': RewriterRegistry('dynamo translation')}

    def register_symbolic(self, func_name: str, backend: NameLike = Backend.DEFAULT,
                          is_pytorch: bool = False,
                          arg_descriptors: Optional[Sequence[str]] = None,
                          ir: NameLike = IR.DEFAULT, extra_checkers: Any = None, *,
                          opset: Optional[int] = None, exporter: str = 'torchscript',
                          **kwargs: Any) -> Callable[[Callable], Callable]:
        """Decorator: record the decorated function as the ONNX export of op ``func_name``.

        Args:
            func_name: ``'namespace::op'`` (``'mmdeploy_srcnn::dynamic_resize'``,
                ``'aten::squeeze'``), or with ``is_pytorch=True`` a bare aten name
                (``'squeeze'``), as MMDeploy writes it. A dynamo translation may name an
                overload: ``'aten::squeeze.dim'``.
            backend, ir, extra_checkers: when it applies, as for function rewrites.
            arg_descriptors: ``symbolic_helper.parse_args`` descriptors (``['v', 'i']``) applied
                to a TorchScript symbolic.
            opset: the lowest ONNX opset this export is valid for (``None``: any).
            exporter: ``'torchscript'`` (``fn(g, *inputs, **attrs)``) or ``'dynamo'`` (an
                onnxscript translation ``fn(*inputs, **attrs)``).
            kwargs: keywords the function reads from ``get_context()``.

        Returns the function unchanged.
        """
        where = f'register_symbolic({func_name!r})'
        check_keywords(kwargs, _REGISTER_PARAMETERS, where)
        if exporter not in EXPORTERS:
            guess = near_miss(str(exporter), EXPORTERS)
            hint = f'; did you mean {guess!r}?' if guess else ''
            raise RewriterError(f'{where}: exporter must be one of {", ".join(EXPORTERS)}, '
                                f'got {exporter!r}{hint}')
        op_name = _op_name(func_name, is_pytorch, exporter, where)
        if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int)
                                  or opset < 1):
            raise RewriterError(f'{where}: opset must be a positive int or None, got {opset!r}')
        options: Dict[str, Any] = {'opset': opset}
        if arg_descriptors:
            if exporter != 'torchscript':
                raise RewriterError(f'{where}: arg_descriptors (symbolic_helper.parse_args) '
                                    'apply to TorchScript symbolics only')
            if isinstance(arg_descriptors, str) or not all(
                    isinstance(d, str) for d in arg_descriptors):
                raise RewriterError(f'{where}: arg_descriptors must be a list of strings, got '
                                    f'{arg_descriptors!r}')
            options['arg_descriptors'] = tuple(arg_descriptors)

        def check(function: Any) -> None:
            if not callable(function):
                raise RewriterError(f'{where}: {function!r} is not callable')

        return self._registries[exporter].decorator(op_name, backend, ir, extra_checkers, kwargs,
                                                    options, check=check)

    def records(self, exporter: str = 'torchscript') -> List[RewriteRecord]:
        """The records of one exporter, in registration order."""
        return self._registries[exporter].records()

    @staticmethod
    def get_context(key: Optional[str] = None) -> RewriteCall:
        """The context of the running symbolic or translation (``cfg``, ``opset``, ...).

        ``key`` may be the op as registered (``'squeeze'`` or ``'aten::squeeze'``) or the
        function's ``module.qualname``. Raises :class:`RewriterError` outside one.
        """
        return current_call('symbolic', key)

    def apply(self, context: Any, env: RewriteEnv, undo: List[Any]) -> DynamoTable:
        """Register the selected TorchScript symbolics (recording each in ``undo``) and return
        the selected dynamo translations, wrapped, by op overload."""
        for record in self._registries['torchscript'].select(env):
            keywords = context.keywords_for(record)  # a keyword clash: an error now, not later
            function = record.rewriter
            descriptors = record.options.get('arg_descriptors')
            if descriptors:
                function = symbolic_helper.parse_args(*descriptors)(function)
            registration = _TorchScriptRegistration(record.func_name)
            undo.append(registration)
            registration.register(functools.partial(_torchscript_symbolic, context, record,
                                                    function, keywords))
        table: DynamoTable = {}
        for record in self._registries['dynamo'].select(env):
            keywords = context.keywords_for(record)
            try:
                overload = _resolve_overload(record.func_name)
            except TargetNotInstalled as err:
                warnings.warn(str(err), MissingTargetWarning, stacklevel=2)
                continue
            if overload in table:
                raise RewriterError(f'two dynamo translations of {overload}: '
                                    f'{table[overload][1].describe()} and {record.describe()}')
            table[overload] = (_dynamo_translation(context, record, keywords), record)
        return table


def _op_name(func_name: Any, is_pytorch: bool, exporter: str, where: str) -> str:
    """The qualified ``'namespace::op[.overload]'`` name of a registration."""
    if not isinstance(func_name, str) or not func_name:
        raise RewriterError(f'{where}: the op name must be a non-empty string')
    if '::' not in func_name:
        if not is_pytorch:
            raise RewriterError(
                f'{where}: name the op as "namespace::op" (or a bare aten name with '
                'is_pytorch=True). MMDeploy\'s other form, a torch.autograd.Function path, is '
                'not supported: the dynamo exporter ignores Function.symbolic; make the '
                'function a torch.library custom op and register "namespace::op"')
        func_name = f'aten::{func_name}'
    match = _OP_NAME.match(func_name)
    if match is None:
        raise RewriterError(f'{where}: {func_name!r} is not a valid op name '
                            '("namespace::op" or "namespace::op.overload")')
    if is_pytorch and match['ns'] != 'aten':
        raise RewriterError(f'{where}: is_pytorch=True names an aten op, got namespace '
                            f'{match["ns"]!r}')
    if match['overload'] and exporter == 'torchscript':
        raise RewriterError(f'{where}: a TorchScript symbolic covers every overload of an op; '
                            'drop the ".overload" suffix')
    return func_name


def _keys(record: RewriteRecord) -> frozenset:
    bare = record.func_name.split('::', 1)[1]
    return frozenset({record.func_name, bare, qualname(record.rewriter)})


def _minimum_error(record: RewriteRecord, opset: int) -> RewriterError:
    return RewriterError(f'{record.func_name}: {qualname(record.rewriter)} needs ONNX opset >= '
                         f'{record.options["opset"]}, the export uses opset {opset}')


# ---- TorchScript exporter -------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _load_builtin_symbolics() -> None:
    """Import torch's per-opset symbolic modules, which register its built-in symbolics.

    torch imports them lazily during exports; loading them all first means no built-in
    appears after we read what is registered (see :class:`_TorchScriptRegistration`).
    """
    for opset in range(7, 21):
        try:
            importlib.import_module(f'torch.onnx.symbolic_opset{opset}')
        except ModuleNotFoundError:
            continue


def _effective_symbolic(name: str, opset: int) -> Optional[Callable]:
    """The symbolic torch's TorchScript exporter would use for ``name`` at ``opset``.

    torch has no public query for this; its registry's lookup is the one it uses itself.
    """
    from torch.onnx._internal.torchscript_exporter import registration
    group = registration.registry.get_function_group(name)
    return None if group is None else group.get(opset)


class _TorchScriptRegistration:
    """A custom symbolic for ``name`` at every opset, and how to put back what was there."""

    def __init__(self, name: str) -> None:
        _load_builtin_symbolics()
        self.name = name
        # What torch would use at each opset, read before anything is registered.
        self.previous = {opset: _effective_symbolic(name, opset)
                         for opset in _TORCHSCRIPT_OPSETS}

    def register(self, make_symbolic: Callable[[Optional[Callable]], Callable]) -> None:
        """Register ``make_symbolic(previous)`` at each opset."""
        for opset, previous in self.previous.items():
            _register(self.name, make_symbolic(previous), opset)

    def restore(self) -> None:
        for opset in _TORCHSCRIPT_OPSETS:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # deprecation; "none registered" after a failure
                torch.onnx.unregister_custom_op_symbolic(self.name, opset)
        # A registration replaces a custom one at the same opset: put those back. torch looks
        # down from opset 9 and up below it, so restore in that order (a restored one may
        # already answer for its neighbours).
        order = [o for o in _TORCHSCRIPT_OPSETS if o >= 9] + \
            [o for o in reversed(_TORCHSCRIPT_OPSETS) if o < 9]
        for opset in order:
            previous = self.previous[opset]
            if previous is not None and _effective_symbolic(self.name, opset) is not previous:
                _register(self.name, previous, opset)


def _register(name: str, symbolic: Callable, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # the exporter is deprecated
        torch.onnx.register_custom_op_symbolic(name, symbolic, opset)


def _torchscript_symbolic(context: Any, record: RewriteRecord, function: Callable,
                          keywords: Mapping[str, Any], previous: Optional[Callable]) -> Callable:
    minimum = record.options['opset']
    keys = _keys(record)

    @functools.wraps(record.rewriter)
    def symbolic(g: Any, *args: Any, **kwargs: Any) -> Any:
        opset = g.opset
        if minimum is not None and opset < minimum:
            raise _minimum_error(record, opset)
        if context.opset is not None and context.opset != opset:
            raise RewriterError(f'{record.func_name}: the RewriterContext was opened with '
                                f'opset={context.opset} but the TorchScript exporter runs opset '
                                f'{opset}')
        call = RewriteCall(origin_func=previous, cfg=context.cfg, backend=context.backend,
                           ir=context.ir, keywords={**keywords, 'opset': opset},
                           kind='symbolic', keys=keys, token=object())
        return run_call(call, function, (g, *args), kwargs)

    return symbolic


# ---- dynamo exporter ------------------------------------------------------------------------

def _resolve_overload(name: str) -> Any:
    """``torch.ops.<ns>.<op>.<overload>`` for ``'ns::op[.overload]'``.

    An op of an unloaded namespace raises :class:`TargetNotInstalled` (its library is not
    loaded, so nothing can call it); an unknown aten op or overload is an error.
    """
    match = _OP_NAME.match(name)
    namespace, op, overload = match['ns'], match['op'], match['overload'] or 'default'
    try:
        packet = getattr(getattr(torch.ops, namespace), op)
    except (AttributeError, RuntimeError):
        if namespace in _TORCH_NAMESPACES:
            raise RewriterError(f'dynamo translation of {name!r}: torch has no op '
                                f'{namespace}::{op}') from None
        raise TargetNotInstalled(f'dynamo translation of {name!r} skipped: no such op is '
                                 'registered with torch (its library is not loaded), so nothing '
                                 'can call it') from None
    try:
        return getattr(packet, overload)
    except AttributeError:
        raise RewriterError(f'dynamo translation of {name!r}: {namespace}::{op} has no overload '
                            f'{overload!r} (it has {", ".join(packet.overloads())})') from None


def _dynamo_translation(context: Any, record: RewriteRecord,
                        keywords: Mapping[str, Any]) -> Callable:
    minimum = record.options['opset']
    keys = _keys(record)

    @functools.wraps(record.rewriter)
    def translation(*args: Any, **kwargs: Any) -> Any:
        if not context.active:
            raise RewriterError(f'the dynamo translation of {record.func_name} ran after its '
                                'RewriterContext closed: export inside the context')
        if minimum is not None and context.opset < minimum:
            raise _minimum_error(record, context.opset)
        call = RewriteCall(origin_func=None, cfg=context.cfg, backend=context.backend,
                           ir=context.ir, keywords=keywords, kind='symbolic', keys=keys,
                           token=object())
        return run_call(call, record.rewriter, args, kwargs)

    return translation
