"""tools/train.py end to end: a few iterations into a temporary folder."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmdeploy_srcnn.models import SRCNN, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_training_run_writes_checkpoint(tmp_path):
    options = ['train.iterations=6', 'train.batch_size=2', 'train.warmup=2',
               'train.log_interval=3', 'data.scales=[2.0,2.5]', 'data.patch_size=48',
               'train.loss_margin=6', 'train.norm_batches=2']
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/srcnn_train.py', '--work-dir',
         str(tmp_path), '--cfg-options', *options],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]

    model = SRCNN(residual=True, scale_aware=True)
    meta = load_checkpoint(model, tmp_path / 'srcnn_multiscale.pth')  # weights_only load
    assert meta['iterations'] == 6 and meta['batch_size'] == 2 and meta['seed'] == 0
    assert meta['scales'] == [2.0, 2.5]
    assert meta['model'] == {'channels': [3, 64, 32, 3], 'kernel_sizes': [9, 1, 5],
                             'residual': True, 'scale_aware': True}
    assert 'coffee' in meta['images'] and 'astronaut' not in meta['images']
    assert math.isfinite(meta['final_loss']) and meta['final_loss'] > 0
    assert meta['wall_time_s'] > 0
    assert meta['command'].startswith('python tools/train.py configs/srcnn_train.py')
    # Training moved the weights away from the bicubic start (conv3 starts at zero).
    assert torch.count_nonzero(model.conv3.weight) > 0
    assert torch.count_nonzero(model.scale_bias1.weight) > 0

    log = (tmp_path / 'train.log').read_text()
    assert 'iter 6/6' in log and 'saved' in log
