"""``python -m mmdeploy_srcnn.app``: the same as the ``srcnn-upscale`` command."""
from .cli import entry_point

entry_point()
