# A model that is not part of mmdeploy_srcnn, deployed from its own module: FeatureResizeSR in
# examples/feature_resize_sr.py (an FSRCNN-like net that resizes its feature maps by the factor).
# Run from the repository root (custom_imports searches the current directory):
#   python tools/deploy.py configs/example_feature_resize_sr.py --random-weights
# No checkpoint is shipped: --random-weights proves the export, not the image quality.
_base_ = ['./_base_/onnx_config.py', './_base_/backends/onnxruntime.py']

# Importing the module registers FeatureResizeSR in mmdeploy_srcnn.registry.MODELS.
custom_imports = dict(imports=['examples.feature_resize_sr'], allow_failed_imports=False)

# The model declares what its weights expect (BGR, pixel values in [0, 255]) and how far tiles
# must overlap (receptive_radius); export writes both into the .onnx metadata.
model = dict(type='FeatureResizeSR', features=32, shrunk=12, mapping_layers=2, kernel_size=3)
checkpoint = None  # give one with --checkpoint, or pass --random-weights
demo_image = '{{ fileDirname }}/../demo/demo.png'

# Graph names and the factor layout belong to the deployment: the app reads them back from the
# file's metadata. _delete_ replaces the base's dynamic_axes (keyed by its names) instead of
# merging into it.
onnx_config = dict(
    input_names=['lr_bgr', 'scales'],
    output_names=['sr_bgr'],
    factor_format='nchw',  # scales = [1, 1, scale_h, scale_w], as ONNX Resize takes them
    dynamic_axes=dict(
        _delete_=True,
        lr_bgr={0: 'batch', 2: 'height', 3: 'width'},
        sr_bgr={0: 'batch', 2: 'out_height', 3: 'out_width'},
    ),
)

# Compared as RGB in [0, 1] (the convention converts), so atol means the same as for SRCNN.
verify = dict(
    scales=[2, 3, 2.5, (2, 3), 1.5, 2.3],
    sizes=[(16, 16), (50, 30), (21, 37)],
    batch_sizes=[1, 2],
    atol=1e-4,
    cross_backend_atol=1e-5,
)
