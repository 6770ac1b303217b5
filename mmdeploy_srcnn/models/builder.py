"""Build a model from a config dict and load its weights."""
from typing import Any, Mapping, Optional

from torch import nn

from mmdeploy_srcnn.registry import MODELS

from .checkpoint import PathLike, load_checkpoint


class ModelBuildError(ValueError):
    """A model config naming an unknown model or settings its class refuses."""


def build_model(model_cfg: Mapping[str, Any], checkpoint: Optional[PathLike] = None) -> nn.Module:
    """Build ``model_cfg`` (``dict(type='SRCNN', ...)``) in eval mode, with ``checkpoint``'s
    weights when given (:class:`~.checkpoint.CheckpointError` if they do not fit)."""
    settings = dict(model_cfg)
    model_type = settings.pop('type', None)
    # The registry's own lookup (scopes, lazy locations); a class is taken as it is. Not
    # MODELS.build: its errors wrap the class's in a multi-line message.
    model_cls = model_type if isinstance(model_type, type) else \
        MODELS.get(model_type) if isinstance(model_type, str) else None
    if model_cls is None:
        raise ModelBuildError(f'unknown model type {model_type!r} '
                              f'(registered: {", ".join(sorted(MODELS.module_dict))})')
    try:
        model = model_cls(**settings)
    except (TypeError, ValueError) as err:  # a setting the class does not take, or refuses
        raise ModelBuildError(f'cannot build {model_cls.__name__} with {settings}: '
                              f'{str(err).splitlines()[0]}') from None
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()
