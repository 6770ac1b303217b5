"""The deployment pipelines, one module each:

- :mod:`.config`: ``load_deploy_config`` (load and validate a deploy config, once);
- :mod:`.rewrites`: ``deploy_context`` (the shipped rewrites, and the context every pipeline
  opens);
- :mod:`.export`: ``torch2onnx``;
- :mod:`.verify`: PyTorch against every backend over the config's verification matrix;
- :mod:`.deploy`: export, verify, demo images and report (``tools/deploy.py``);
- :mod:`.profile`: speed and memory per engine (``tools/profiler.py``).

``from mmdeploy_srcnn.apis import torch2onnx`` works as in MMDeploy; the names below are
imported on first use, so that loading a config does not import torch.
"""
import importlib
from typing import Any

_EXPORTS = {
    'torch2onnx': 'export', 'ExportError': 'export',
    'load_deploy_config': 'config', 'ConfigError': 'config',
    'run_cases': 'verify', 'verification_rows': 'verify', 'BackendComparison': 'verify',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
