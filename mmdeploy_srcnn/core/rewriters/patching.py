"""Resolve dotted paths to attributes, replace them, and put back exactly what was there.

A target such as ``'torch.nn.functional.interpolate'`` or ``'torch.Tensor.repeat'`` is found by
importing the longest importable module prefix and walking the rest with ``getattr``. Replacing
it is a ``setattr`` on its owner (a module or a class); every replacement is recorded as a
:class:`Patch` that knows how to undo itself, including "the class had no such attribute of its
own" (an inherited method), so that after restoring the class is exactly as before.
"""
import dataclasses
import importlib
import sys
from types import ModuleType
from typing import Any, Callable, Iterator, List, Tuple

_MISSING = object()


class RewriterError(RuntimeError):
    """A rewrite that cannot be registered, resolved, applied or undone."""


@dataclasses.dataclass
class Target:
    """A resolved dotted path: ``owner.name`` currently holds ``value``."""

    path: str
    owner: Any
    name: str
    value: Any  # the callable a rewriter wraps (a static/class method's plain function)
    raw: Any  # ``owner.__dict__[name]`` or _MISSING when inherited (classes only)


@dataclasses.dataclass
class Patch:
    """One ``setattr`` that was done, and what to put back."""

    owner: Any
    name: str
    previous: Any  # the raw previous value, or _MISSING: delete the attribute on restore

    def restore(self) -> None:
        """Undo the replacement."""
        if self.previous is _MISSING:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.previous)


def resolve(path: str) -> Target:
    """Find the attribute named by the dotted ``path``; raise :class:`RewriterError` if absent."""
    parts = path.split('.')
    if len(parts) < 2 or not all(parts):
        raise RewriterError(f'rewrite target {path!r} is not a dotted path like '
                            "'package.module.function' or 'package.Class.method'")
    owner: Any = None
    for split in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:split])
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            continue
        attrs = parts[split:]
        break
    if owner is None:
        raise RewriterError(f'rewrite target {path!r}: no importable module in it')
    for depth, attr in enumerate(attrs[:-1]):
        try:
            owner = getattr(owner, attr)
        except AttributeError:
            where = '.'.join(parts[:len(parts) - len(attrs) + depth])
            raise RewriterError(f'rewrite target {path!r}: {where!r} has no attribute '
                                f'{attr!r}') from None
    name = attrs[-1]
    try:
        value = getattr(owner, name)
    except AttributeError:
        raise RewriterError(f'rewrite target {path!r}: {_describe(owner)} has no attribute '
                            f'{name!r}') from None
    raw = vars(owner).get(name, _MISSING) if isinstance(owner, type) else value
    if isinstance(raw, (staticmethod, classmethod)):
        # Rewriters see the plain function: a class method's rewriter gets ``cls`` first and
        # passes it on to ``origin_func``, just as a method's rewriter does with ``self``.
        value = raw.__func__
    return Target(path=path, owner=owner, name=name, value=value, raw=raw)


def _describe(owner: Any) -> str:
    if isinstance(owner, ModuleType):
        return f'module {owner.__name__!r}'
    return repr(getattr(owner, '__qualname__', owner))


def replace(target: Target, replacement: Callable) -> Patch:
    """Put ``replacement`` at ``target``, keeping static/class-method wrappers of the original."""
    if isinstance(target.raw, staticmethod):
        replacement = staticmethod(replacement)
    elif isinstance(target.raw, classmethod):
        replacement = classmethod(replacement)
    patch = Patch(owner=target.owner, name=target.name, previous=target.raw)
    try:
        setattr(target.owner, target.name, replacement)
    except (AttributeError, TypeError) as err:
        raise RewriterError(f'cannot patch rewrite target {target.path!r}: {err}') from err
    return patch


def iter_module_aliases(original: Any, skip: Any) -> Iterator[Tuple[ModuleType, str]]:
    """Yield ``(module, name)`` for every loaded module global that *is* ``original``.

    This finds ``from torch.nn.functional import interpolate`` style aliases so that they can be
    rebound too. References the scan cannot see (locals, closures, default arguments, other
    containers) keep the original.
    """
    for module in list(sys.modules.values()):
        if not isinstance(module, ModuleType) or module is skip:
            continue
        try:
            namespace = vars(module)
        except TypeError:
            continue
        for name, value in list(namespace.items()):
            if value is original:
                yield module, name


def replace_aliases(original: Any, replacement: Callable, skip: Any) -> List[Patch]:
    """Rebind every module-level alias of ``original`` (except in ``skip``) to ``replacement``."""
    patches = []
    for module, name in iter_module_aliases(original, skip):
        patches.append(Patch(owner=module, name=name, previous=original))
        setattr(module, name, replacement)
    return patches
