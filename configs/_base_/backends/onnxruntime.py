# ONNX Runtime on the CPU. threads=None lets ONNX Runtime choose;
# optimization_level: 'disable' | 'basic' | 'extended' | 'all'.
backend_config = dict(type='onnxruntime', threads=None, optimization_level='all')
