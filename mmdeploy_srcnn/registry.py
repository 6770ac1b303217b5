"""mmengine registries through which configs build models.

Kept free of torch imports so that light-weight modules can import it.
"""
from mmengine.registry import Registry

MODELS = Registry('model', locations=['mmdeploy_srcnn.models'])

# Inference-engine wrappers (`backend_config.type` in a deploy config picks one).
BACKENDS = Registry('backend', locations=['mmdeploy_srcnn.backends'])
