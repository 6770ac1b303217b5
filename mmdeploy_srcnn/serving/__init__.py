"""Serving the exported model with inference servers (torch-free): Triton model repositories."""
from .triton import (BACKENDS, TritonRepositoryError, config_text, read_model_io,
                     write_model_repository)

__all__ = ['BACKENDS', 'TritonRepositoryError', 'config_text', 'read_model_io',
           'write_model_repository']
