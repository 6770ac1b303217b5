"""Untrusted models get a bound: a timeout or Ctrl-C stops a run that would never end."""
import _thread
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from support.onnx_models import endless_loop_model

from mmdeploy_srcnn.backends import build_backend
from mmdeploy_srcnn.backends.base import CANCEL_GRACE_SECONDS, BackendTimeout

INPUTS = {'input': np.zeros((1, 3, 4, 4), np.float32), 'factor': np.ones(2, np.float32)}


@pytest.fixture(scope='module')
def endless(tmp_path_factory):
    return endless_loop_model(tmp_path_factory.mktemp('loop') / 'loop.onnx')


def test_onnxruntime_run_stops_at_the_timeout(endless):
    backend = build_backend({'type': 'onnxruntime'}, endless)
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match=r'loop.onnx: the run took longer than the '
                                             r'timeout of 0.3 s and was stopped'):
        backend.run(INPUTS, timeout=0.3)
    assert not backend._stuck  # ONNX Runtime honoured the cancellation
    assert time.monotonic() - started < 0.3 + CANCEL_GRACE_SECONDS


def test_onnxruntime_run_stops_on_ctrl_c(endless):
    backend = build_backend({'type': 'onnxruntime'}, endless)
    threading.Timer(0.3, _thread.interrupt_main).start()  # what Ctrl-C does
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        backend.run(INPUTS)
    assert time.monotonic() - started < 0.3 + CANCEL_GRACE_SECONDS
    assert not backend._stuck


@pytest.mark.openvino
def test_an_engine_that_cannot_stop_is_abandoned_and_refuses_more_runs(endless):
    # OpenVINO's cancel does not interrupt a running Loop: the run is abandoned. In a child
    # process, so that the abandoned run does not keep a core busy for the rest of the suite.
    code = textwrap.dedent(f'''
        import time, numpy as np
        from mmdeploy_srcnn.backends import BackendError, build_backend
        from mmdeploy_srcnn.backends.base import BackendTimeout
        inputs = {{'input': np.zeros((1, 3, 4, 4), np.float32),
                  'factor': np.ones(2, np.float32)}}
        backend = build_backend({{'type': 'openvino'}}, {str(endless)!r})
        started = time.monotonic()
        try:
            backend.run(inputs, timeout=0.3)
        except BackendTimeout:
            print(f'timeout after {{time.monotonic() - started:.2f}} s')
        try:
            backend.run(inputs)
        except BackendError as err:
            print(err)
    ''')
    started = time.monotonic()
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert float(first.split()[2]) < 0.3 + CANCEL_GRACE_SECONDS + 0.5
    assert 'a previous run could not be stopped' in second
    assert time.monotonic() - started < 30  # the process still exits
