"""MMDeploy's ``mark`` decorator, accepted so that marked code ports unchanged.

In MMDeploy, ``mark`` wraps a function's tensors in ``Mark`` nodes that its model-partition
step cuts at; when no partition is configured the nodes are dropped and the export is the
unmarked one. This package has no partition step (nothing reads a ``partition_config``), so
``mark`` returns the function unchanged: the same export MMDeploy makes without partitioning.
"""
from typing import Any, Callable, Optional, Sequence


def mark(func_name: Optional[str] = None, inputs: Optional[Sequence[str]] = None,
         outputs: Optional[Sequence[str]] = None, **attrs: Any) -> Callable[[Callable], Callable]:
    """Decorator that returns the decorated function unchanged (see the module docs)."""
    def decorator(func: Callable) -> Callable:
        return func

    return decorator
