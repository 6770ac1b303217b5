"""Load and save SRCNN checkpoints: our own format and mmagic's.

Our format: ``{'state_dict': {...}, 'meta': {...}}`` with the model's own key names.
mmagic's format (the tutorial's ``srcnn.pth``): ``{'state_dict': {'generator.conv1.weight': ...}}``;
the ``generator.`` prefix is stripped. Checkpoints are loaded with ``weights_only=True``: a
checkpoint is data and unpickling it must never run code.
"""
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from torch import nn

from mmdeploy_srcnn.utils.fileio import atomic_write

PathLike = Union[str, os.PathLike]
_MMAGIC_PREFIX = 'generator.'


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def _extract_state_dict(obj: Any, path: PathLike) -> Dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get('state_dict'), dict):
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f'{path}: not a checkpoint (expected a state_dict of tensors)')
    if obj and all(key.startswith(_MMAGIC_PREFIX) for key in obj):
        obj = {key[len(_MMAGIC_PREFIX):]: value for key, value in obj.items()}
    return obj


def read_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a checkpoint file safely; returns ``{'state_dict': ..., 'meta': ...}``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: checkpoint file not found')
    try:
        raw = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises pickle, zip, EOF and runtime errors here
        detail = str(err).strip().splitlines()
        raise CheckpointError(f'{path}: cannot load checkpoint safely: {type(err).__name__}'
                              f'{": " + detail[0] if detail else ""}') from err
    meta = raw.get('meta', {}) if isinstance(raw, dict) else {}
    return {'state_dict': _extract_state_dict(raw, path), 'meta': meta}


def load_checkpoint(model: nn.Module, path: PathLike) -> Dict[str, Any]:
    """Load the weights in ``path`` into ``model`` strictly; returns the checkpoint's meta.

    Missing, unexpected or wrongly shaped keys raise :class:`CheckpointError` listing them.
    """
    checkpoint = read_checkpoint(path)
    state_dict = checkpoint['state_dict']
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(f'{key}: checkpoint {tuple(state_dict[key].shape)} vs model '
                         f'{tuple(expected[key].shape)}'
                         for key in set(expected) & set(state_dict)
                         if state_dict[key].shape != expected[key].shape)
    problems = []
    if missing:
        problems.append(f'missing keys: {", ".join(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {", ".join(unexpected)}')
    if wrong_shape:
        problems.append(f'wrong shapes: {"; ".join(wrong_shape)}')
    if problems:
        trained_as = checkpoint['meta'].get('model')
        hint = (f' (it was trained with model settings {trained_as}; set them in the config)'
                if isinstance(trained_as, dict) else '')
        raise CheckpointError(f'{path} does not fit {type(model).__name__}: '
                              + ' | '.join(problems) + hint)
    model.load_state_dict(state_dict, strict=True)
    return checkpoint['meta']


def save_checkpoint(model: nn.Module, path: PathLike,
                    meta: Optional[Dict[str, Any]] = None) -> None:
    """Write ``model``'s weights and ``meta`` to ``path`` atomically (temp file, then rename)."""
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_write(path) as file:
        torch.save({'state_dict': state_dict, 'meta': dict(meta or {})}, file)
