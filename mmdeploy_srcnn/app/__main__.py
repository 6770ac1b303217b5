"""``python -m mmdeploy_srcnn.app``: the same as the ``srcnn-upscale`` command."""
import sys

from .cli import main

sys.exit(main())
