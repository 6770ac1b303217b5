"""Build a model from a config dict and load its weights."""
from typing import Any, Mapping, Optional

from torch import nn

from mmdeploy_srcnn.registry import MODELS

from .checkpoint import PathLike, load_checkpoint


def build_model(model_cfg: Mapping[str, Any], checkpoint: Optional[PathLike] = None) -> nn.Module:
    """Build ``model_cfg`` (``dict(type='SRCNN', ...)``) in eval mode, with ``checkpoint``'s
    weights when given."""
    model = MODELS.build(dict(model_cfg))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()
