# The main job: SRCNN exported once, run at any upscale factor on ONNX Runtime.
#   python tools/deploy.py configs/srcnn_dynamic.py
_base_ = ['./_base_/srcnn.py', './_base_/onnx_config.py', './_base_/backends/onnxruntime.py']
