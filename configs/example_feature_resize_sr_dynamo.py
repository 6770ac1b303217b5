# FeatureResizeSR (examples/feature_resize_sr.py) with torch's dynamo (torch.export) exporter.
#   python tools/deploy.py configs/example_feature_resize_sr_dynamo.py --random-weights
_base_ = ['./example_feature_resize_sr.py']

onnx_config = dict(exporter='dynamo', opset_version=18)
