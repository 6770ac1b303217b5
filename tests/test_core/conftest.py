"""Private rewriter registries for the core's tests (the shipped rewrites stay out)."""
import pytest

from mmdeploy_srcnn.core import FunctionRewriter, RewriterManager


@pytest.fixture
def manager() -> RewriterManager:
    """Fresh, empty function, module and symbolic registries."""
    return RewriterManager()


@pytest.fixture
def registry(manager) -> FunctionRewriter:
    """The private manager's function rewriter (overrides the suite-wide fixture)."""
    return manager.function_rewriter
