# ONNX export settings shared by every deploy config.
onnx_config = dict(
    # 'torchscript' (torch.onnx.export(dynamo=False), opset 11..20) or
    # 'dynamo' (torch.export based, the default of torch >= 2.9; opset >= 18).
    exporter='torchscript',
    # 18: Resize takes a [scale_h, scale_w] factor as it is (its axes attribute), so engines
    # that compute in bfloat16 (OpenVINO's default on CPUs with bf16) keep the factor exact.
    opset_version=18,
    save_file='end2end.onnx',  # relative to the work dir
    input_names=['input', 'factor'],
    output_names=['output'],
    # 'hw': factor is [scale_h, scale_w]; 'nchw': [1, 1, scale_h, scale_w] (MMDeploy tutorial).
    factor_format='hw',
    # ONNX Runtime and OpenVINO: export the upscale as two MatMul with interpolation matrices
    # built in the graph from the factor, instead of one Resize node (same result within 1e-5,
    # see mmdeploy_srcnn/ops/matmul_resize.py and benchmarks/README.md). False: Resize.
    matmul_resize=True,
    dynamic_axes=dict(
        input={0: 'batch', 2: 'height', 3: 'width'},
        output={0: 'batch', 2: 'out_height', 3: 'out_width'},
    ),
)
