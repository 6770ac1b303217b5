# OpenVINO on the CPU (pip install 'mmdeploy_srcnn[openvino]').
# performance_hint: 'LATENCY' (one image at a time) or 'THROUGHPUT'; threads=None: OpenVINO picks.
# precision='f32': OpenVINO's default on bfloat16-capable CPUs is bf16 (errors near 5e-3).
backend_config = dict(type='openvino', device='CPU', threads=None, performance_hint='LATENCY',
                      precision='f32')
