"""Super-resolution models and their checkpoint loading."""
# The models accept a Tensor factor inside a RewriterContext through the shipped rewrites.
import mmdeploy_srcnn.pytorch  # noqa: F401

from .builder import build_model
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .srcnn import SRCNN

__all__ = ['SRCNN', 'CheckpointError', 'build_model', 'load_checkpoint', 'save_checkpoint']
