"""mmdeploy_srcnn: export PyTorch super-resolution models to ONNX with a dynamic upscale factor."""

__version__ = '0.1.0'
