"""Resolve dotted paths to attributes, replace them, and put back exactly what was there.

A target such as ``'torch.nn.functional.interpolate'`` or ``'torch.Tensor.repeat'`` is found by
importing its top-level package and walking the rest with ``getattr`` (importing submodules on
the way). Replacing
it is a ``setattr`` on its owner (a module or a class); every replacement is recorded as a
:class:`Patch` that knows how to undo itself, including "the class had no such attribute of its
own" (an inherited method), so that after restoring the class is exactly as before.
"""
import dataclasses
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any, Callable, Iterator, List, Tuple

_MISSING = object()


class RewriterError(RuntimeError):
    """A rewrite that cannot be registered, resolved, applied or undone."""


class TargetNotInstalled(RewriterError):
    """A rewrite target inside a package that is not installed (the rewrite is skipped)."""


class MissingTargetWarning(UserWarning):
    """A selected rewrite was skipped because its target's package is not installed."""


# Patching is process-global: every context (and init-argument recording) holds this lock.
PATCH_LOCK = threading.RLock()


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
    """Find the attribute named by the dotted ``path``.

    The first part is a top-level package: if it is not installed, :class:`TargetNotInstalled`
    is raised (the caller skips the rewrite: nothing in this process can call the target). The
    rest is walked with ``getattr``, importing a submodule where a package lacks the attribute;
    anything that does not resolve inside an installed package raises :class:`RewriterError`
    naming it (a renamed or misspelled target must not be a silent no-op).
    """
    parts = path.split('.') if isinstance(path, str) else []
    if len(parts) < 2 or not all(parts):
        raise RewriterError(f'rewrite target {path!r} is not a dotted path like '
                            "'package.module.function' or 'package.Class.method'")
    top = parts[0]
    if top not in sys.modules and importlib.util.find_spec(top) is None:
        raise TargetNotInstalled(f'rewrite target {path!r} skipped: package {top!r} is not '
                                 'installed, so nothing can call it')
    owner: Any = _import(top, path)
    for depth, attr in enumerate(parts[1:-1], start=1):
        owner = _child(owner, attr, path, '.'.join(parts[:depth]))
    name = parts[-1]
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


def _import(module_name: str, path: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as err:
        raise RewriterError(f'rewrite target {path!r}: importing {module_name!r} failed: '
                            f'{type(err).__name__}: {err}') from err


def _child(owner: Any, attr: str, path: str, where: str) -> Any:
    """``owner.attr``, importing ``owner``'s submodule ``attr`` if ``owner`` is a package."""
    try:
        return getattr(owner, attr)
    except AttributeError:
        pass
    if isinstance(owner, ModuleType) and hasattr(owner, '__path__'):
        submodule = f'{owner.__name__}.{attr}'
        try:
            return importlib.import_module(submodule)
        except ModuleNotFoundError as err:
            if err.name != submodule:
                raise RewriterError(f'rewrite target {path!r}: importing {submodule!r} '
                                    f'failed: {err}') from err
        except Exception as err:
            raise RewriterError(f'rewrite target {path!r}: importing {submodule!r} failed: '
                                f'{type(err).__name__}: {err}') from err
    raise RewriterError(f'rewrite target {path!r}: {where!r} has no attribute {attr!r}')


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


def restore_all(undo: List[Any]) -> None:
    """Call ``restore()`` on each of ``undo`` in reverse order, all of them even if some fail;
    then raise :class:`RewriterError` for the first failure."""
    errors: List[BaseException] = []
    try:
        for patch in reversed(undo):
            try:
                patch.restore()
            except Exception as err:  # keep restoring the others
                errors.append(err)
    finally:
        undo.clear()
    if errors:
        raise RewriterError(f'could not restore {len(errors)} patched attribute(s); first: '
                            f'{errors[0]}') from errors[0]
