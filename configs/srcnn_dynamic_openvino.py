# The main job on OpenVINO, cross-checked against ONNX Runtime and the ONNX reference evaluator,
# and verified at every precision OpenVINO runs:
#   pip install -e '.[openvino,train]'   # train: int8 is calibrated on the built-in images
#   python tools/deploy.py configs/srcnn_dynamic_openvino.py
_base_ = ['./_base_/srcnn.py', './_base_/onnx_config.py', './_base_/backends/openvino.py']

verify = dict(
    compare_backends=['openvino', 'onnxruntime', 'reference'],
    # Against PyTorch fp32 on the verification matrix (uniform noise in [0, 1], the hardest
    # input for rounding). Measured here with the shipped model: bf16 and OpenVINO's own default
    # (bf16 on CPUs with bf16 instructions) max |diff| 1.5e-2, PSNR >= 53 dB; f16 2.1e-3, 69 dB;
    # int8 6.5e-2, 49.6 dB. 'default' passes no precision hint at all: what a user of OpenVINO
    # gets without asking.
    precisions=dict(
        default=dict(atol=0.05, min_psnr=45.0),
        bf16=dict(atol=0.05, min_psnr=45.0),
        f16=dict(atol=0.01, min_psnr=60.0),
        int8=dict(atol=0.1, min_psnr=45.0),
    ),
)
