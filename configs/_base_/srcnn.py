# SRCNN, its weights, the demo image and the verification matrix, shared by the deploy configs.
model = dict(type='SRCNN', channels=(3, 64, 32, 3), kernel_sizes=(9, 1, 5), residual=True,
             scale_aware=True)
# {{ fileDirname }} is this file's folder (mmengine substitutes it), so the paths work from any
# working directory.
checkpoint = '{{ fileDirname }}/../../checkpoints/srcnn_multiscale.pth'
demo_image = '{{ fileDirname }}/../../demo/demo.png'
# Y-PSNR loss of each reduced precision against f32 on the test split, measured with
#   python tools/test.py configs/srcnn_train.py --model end2end.onnx --precision f32 int8 \
#       bf16 f16 --backend onnxruntime openvino --quality-table TABLE.json
# Recorded in the exported model for srcnn-upscale --precision auto (only when it was measured
# on these weights and this resize graph).
quality_table = '{{ fileDirname }}/../../checkpoints/srcnn_multiscale.quality.json'

# PyTorch vs the backend, every combination; shapes must match and values agree within atol
# (model inputs and outputs are RGB in [0, 1]).
verify = dict(
    # x2.3 at 50 px: ONNX's float32 size rule gives 115, PyTorch's float64 rule 114.
    scales=[2, 3, 4, 2.5, (2, 3), 2.3],
    sizes=[(32, 32), (50, 30), (37, 53)],
    batch_sizes=[1, 2],
    atol=1e-4,
    cross_backend_atol=1e-5,  # between two backends (--compare-backends)
)
