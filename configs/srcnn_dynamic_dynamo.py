# The main job with torch's dynamo (torch.export based) ONNX exporter.
#   python tools/deploy.py configs/srcnn_dynamic_dynamo.py
_base_ = ['./srcnn_dynamic.py']

onnx_config = dict(exporter='dynamo', opset_version=18)
