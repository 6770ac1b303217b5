"""Import a script of tools/ as a module, so tests can call its functions directly.

tools/ is not a package: its scripts run as ``python tools/NAME.py``.
"""
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_tool(name: str) -> ModuleType:
    """Execute ``tools/<name>.py`` as a fresh module named ``<name>_tool``."""
    spec = importlib.util.spec_from_file_location(f'{name}_tool', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
