"""Super-resolution models and their checkpoint loading."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .srcnn import SRCNN

__all__ = ['SRCNN', 'CheckpointError', 'load_checkpoint', 'save_checkpoint']
