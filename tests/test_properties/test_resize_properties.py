"""Property tests: exported dynamic Resize == PyTorch reference, over random shapes and scales.

One model per (exporter, mode, align_corners) is exported once and reused across cases; each
case draws a batch of 1-3, a height and width of 1-150 and per-axis scales of 1.0-4.0. The
output shape must equal the reference exactly and the values agree within ATOL. The last test
checks that enough cases ran (hypothesis could otherwise skip cases silently).
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmdeploy_srcnn.apis.config import load_deploy_config
from mmdeploy_srcnn.apis.export import torch2onnx
from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.ops import dynamic_resize

# [0, 1] inputs; ATen's bicubic and ORT's Resize differ by up to 3e-5 at 256^2 -> 768^2
# (measured here with both on random images).
ATOL = 5e-5
CASES_PER_MODEL = 25
MODES = [('nearest', False), ('bilinear', False), ('bilinear', True), ('bicubic', False),
         ('bicubic', True)]
EXPORTERS = {'torchscript': {'onnx_config.opset_version': 13},
             'dynamo': {'onnx_config.exporter': 'dynamo', 'onnx_config.opset_version': 18}}
CASES_RUN = []


class Resize(torch.nn.Module):
    # A bare resize: no neighbours after it, none before it; RGB in [0, 1].
    color_order, value_range, receptive_radius, input_receptive_radius = 'RGB', (0, 1), 0, 0

    def __init__(self, mode, align_corners):
        super().__init__()
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x, factor):
        return torch.nn.functional.interpolate(x, scale_factor=factor, mode=self.mode,
                                               align_corners=self.align_corners or None)


@pytest.fixture(scope='module', params=[(e, m, a) for e in EXPORTERS for m, a in MODES],
                ids=lambda p: '-'.join(map(str, p)))
def exported(request, tmp_path_factory):
    exporter, mode, align_corners = request.param
    cfg = load_deploy_config('configs/srcnn_dynamic.py', EXPORTERS[exporter])
    model = Resize(mode, align_corners).eval()
    path = torch2onnx(model, cfg, tmp_path_factory.mktemp(f'{exporter}-{mode}'))
    return mode, align_corners, build_backend(dict(type='onnxruntime'), path)


scales = st.one_of(st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 2.3, 3.3, 1.1]),
                   st.floats(1.0, 4.0, allow_nan=False, width=32))


@settings(max_examples=CASES_PER_MODEL, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 3), height=st.integers(1, 150), width=st.integers(1, 150),
       scale_h=scales, scale_w=scales, seed=st.integers(0, 2**16))
def test_backend_matches_pytorch(exported, batch, height, width, scale_h, scale_w, seed):
    mode, align_corners, backend = exported
    image = np.random.default_rng(seed).random((batch, 3, height, width), dtype=np.float32)
    factor = np.array([scale_h, scale_w], dtype=np.float32)
    expected = dynamic_resize(torch.from_numpy(image), torch.from_numpy(factor), mode,
                              align_corners).numpy()
    actual = backend.run({'input': image, 'factor': factor})['output']
    CASES_RUN.append(1)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= ATOL


def test_enough_cases_ran():
    """Runs last in this module (pytest keeps file order): at least 200 property cases."""
    assert len(CASES_RUN) >= 200, f'only {len(CASES_RUN)} resize property cases ran'
