"""Fixtures shared by the whole suite."""
import sys
import types
import uuid

import pytest

from mmdeploy_srcnn.core import FunctionRewriter


@pytest.fixture
def registry() -> FunctionRewriter:
    """A private rewriter registry, so tests never touch the shipped rewrites."""
    return FunctionRewriter()


@pytest.fixture
def make_module():
    """Create importable modules from source-free objects; removed from sys.modules after."""
    created = []

    def make(**attrs) -> types.ModuleType:
        name = f'_mmdeploy_srcnn_test_{uuid.uuid4().hex}'
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
        created.append(name)
        return module

    yield make
    for name in created:
        sys.modules.pop(name, None)
