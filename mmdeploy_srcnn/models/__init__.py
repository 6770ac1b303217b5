"""Super-resolution models and their checkpoint loading."""
from .builder import ModelBuildError, build_model
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .srcnn import SRCNN

__all__ = ['SRCNN', 'CheckpointError', 'ModelBuildError', 'build_model', 'load_checkpoint',
           'save_checkpoint']
