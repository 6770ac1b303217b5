"""Killing an export mid-write leaves the previous file at the destination, never a partial one."""
import sys
import textwrap

from support.processes import sigkill_when_marker_appears

SCRIPT = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from mmdeploy_srcnn.apis import export
    from mmdeploy_srcnn.models import SRCNN
    from mmdeploy_srcnn.apis.config import load_deploy_config

    work_dir, marker = Path(sys.argv[1]), Path(sys.argv[2])

    def slow_writer(model, args, path, onnx_cfg, ctx):
        with open(path, 'wb') as file:
            file.write(b'partial model bytes')
            file.flush()
            marker.touch()
            time.sleep(60)  # killed here

    export._EXPORTERS['torchscript'] = slow_writer
    export.torch2onnx(SRCNN(), load_deploy_config('configs/srcnn_dynamic.py'), work_dir)
''')


def test_sigkill_during_export_keeps_the_previous_file(tmp_path):
    destination = tmp_path / 'end2end.onnx'
    destination.write_bytes(b'previous model')
    marker = tmp_path / 'writing'
    sigkill_when_marker_appears([sys.executable, '-c', SCRIPT, str(tmp_path), str(marker)], marker)
    assert destination.read_bytes() == b'previous model'
    # The partial data only ever lived under a hidden temporary name.
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ('end2end.onnx', 'writing')]
    assert all(name.startswith('.end2end.') and '.tmp' in name for name in leftovers)
