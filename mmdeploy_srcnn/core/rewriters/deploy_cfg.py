"""The deploy config as rewrites see it: always an mmengine ``Config``."""
from typing import Any, Mapping

from mmengine.config import Config

from .patching import RewriterError


def as_config(cfg: Any) -> Config:
    """``cfg`` as a ``Config``: ``None`` gives an empty one, a mapping is wrapped, a ``Config``
    is used as it is (the same object)."""
    if cfg is None:
        return Config()
    if isinstance(cfg, Config):
        return cfg
    if isinstance(cfg, Mapping):
        return Config(dict(cfg))
    raise RewriterError(f'cfg must be an mmengine Config, a dict or None, got '
                        f'{type(cfg).__name__}')
