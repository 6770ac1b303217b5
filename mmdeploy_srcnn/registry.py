"""mmengine registries through which configs build models.

Kept free of torch imports so that light-weight modules can import it.
"""
from mmengine.registry import Registry

MODELS = Registry('model', locations=['mmdeploy_srcnn.models'])

# Inference-engine wrappers (`backend_config.type` in a deploy config picks one). Importing
# mmdeploy_srcnn.backends registers them. Look them up in `BACKENDS.module_dict`: mmengine's
# `Registry.get` logs through MMLogger, which imports torch, and the app must stay torch-free.
BACKENDS = Registry('backend')
