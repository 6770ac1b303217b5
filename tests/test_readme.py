"""The README's examples run as written."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / 'README.md').read_text()


def _python_blocks():
    return re.findall(r'```python\n(.*?)```', README, flags=re.S)


def test_rewriter_example_runs():
    (example,) = [block for block in _python_blocks() if 'register_rewriter' in block]
    result = subprocess.run([sys.executable, '-c', example], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_readme_shows_the_main_job_and_ci_runs_its_test_command():
    assert 'python tools/deploy.py configs/srcnn_dynamic.py' in README
    commands = re.findall(r'```bash\n(.*?)\n```', README, flags=re.S)
    test_command = next(c for c in commands if 'pytest' in c)
    ci = (ROOT / '.ci' / 'run').read_text()
    # CI runs the README's test command step by step (with --quiet installs).
    for step in test_command.split(' && '):
        normalized = step.replace('pip install', 'python -m pip install --quiet')
        assert step in ci or normalized in ci, step
