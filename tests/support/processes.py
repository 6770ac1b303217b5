"""Kill a child process at a chosen moment, to test what a crash mid-write leaves behind."""
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence


def sigkill_when_marker_appears(command: Sequence[str], marker: Path,
                                timeout_s: float = 120) -> None:
    """Start ``command``; once it creates ``marker`` (its signal that it is mid-write), SIGKILL it.

    Fails the test if the process exits, or never writes the marker, before it can be killed.
    """
    process = subprocess.Popen(list(command))
    try:
        deadline = time.monotonic() + timeout_s
        while not marker.exists():
            assert process.poll() is None, f'the process exited before writing: {command[:3]}'
            assert time.monotonic() < deadline, f'the process never started writing: {command[:3]}'
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
