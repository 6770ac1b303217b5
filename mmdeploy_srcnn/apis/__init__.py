"""The deployment pipelines, one module each (import what you use; nothing is re-exported, so
loading a config does not import torch):

- :mod:`.config`: ``load_deploy_config`` (load and validate a deploy config, once);
- :mod:`.rewrites`: ``deploy_context`` (the shipped rewrites, and the context every pipeline
  opens);
- :mod:`.export`: ``torch2onnx``;
- :mod:`.verify`: PyTorch against every backend over the config's verification matrix;
- :mod:`.deploy`: export, verify, demo images and report (``tools/deploy.py``);
- :mod:`.profile`: speed and memory per engine (``tools/profiler.py``).
"""
