# The main job on OpenVINO, cross-checked against ONNX Runtime and the ONNX reference evaluator.
#   python tools/deploy.py configs/srcnn_dynamic_openvino.py
_base_ = ['./_base_/srcnn.py', './_base_/onnx_config.py', './_base_/backends/openvino.py']

verify = dict(compare_backends=['openvino', 'onnxruntime', 'reference'])
