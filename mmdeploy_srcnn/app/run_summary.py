"""The JSON summary a batch run keeps in its output folder, and the check that makes resuming safe.

A run that resumes skips every image whose output exists (outputs are published complete or
not at all, so an existing one is finished). That is only right if those outputs were made
the same way: the summary records the settings that decide an output's pixels (the model
file's SHA-256, the scale, the engine and the precision asked for), and a rerun whose
settings differ is refused before any work instead of silently mixing two kinds of output.

The summary is written (atomically, replacing the previous one) when the run starts, with
``"state": "running"``, so that even a run that was killed leaves its settings behind, and
again when it ends (``"finished"`` or ``"interrupted"``) with every image: done, skipped and
failed with the reason. Paths are stored as given, JSON-escaped; messages are the one-line
errors the command prints.
"""
import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mmdeploy_srcnn.utils.fileio import atomic_write, printable
from mmdeploy_srcnn.utils.scale import format_scale

SUMMARY_NAME = 'srcnn-upscale-summary.json'
"""File name of the summary in the output folder (its suffix is no image suffix, so no input's
output can take the name)."""
FORMAT_VERSION = 1
_MAX_SUMMARY_BYTES = 1 << 30


class SummaryError(ValueError):
    """The previous summary forbids this run, or cannot be read; one printable line."""


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """What decides the pixels of an output (tiling does not: tiles equal the whole image)."""

    model_sha256: str
    scale: Tuple[float, float]
    backend: str
    precision: str

    def differences(self, other: 'RunSettings') -> List[str]:
        """``'NAME OTHER (this run: SELF)'`` for every setting that differs from ``other``."""
        def show(settings: RunSettings, name: str) -> str:
            value = getattr(settings, name)
            return f'x{format_scale(value)}' if name == 'scale' else str(value)

        return [f'{name} {show(other, name)} (this run: {show(self, name)})'
                for name in ('model_sha256', 'scale', 'backend', 'precision')
                if getattr(self, name) != getattr(other, name)]

    def to_json(self) -> Dict[str, Any]:
        return {'model_sha256': self.model_sha256, 'scale': list(self.scale),
                'backend': self.backend, 'precision': self.precision}

    @classmethod
    def from_json(cls, data: Any) -> 'RunSettings':
        """Settings read back from a summary; ``ValueError`` if malformed."""
        if not isinstance(data, dict):
            raise ValueError('no settings')
        scale = data.get('scale')
        values = (data.get('model_sha256'), data.get('backend'), data.get('precision'))
        if not (isinstance(scale, list) and len(scale) == 2
                and all(isinstance(v, (int, float)) for v in scale)
                and all(isinstance(v, str) for v in values)):
            raise ValueError('malformed settings')
        return cls(values[0], (float(scale[0]), float(scale[1])), values[1], values[2])


def read_previous_settings(out_dir: Path) -> Optional[RunSettings]:
    """The settings of the last run into ``out_dir``, or None if it has no summary.

    Raises:
        SummaryError: a summary that cannot be read or has no valid settings.
    """
    path = out_dir / SUMMARY_NAME
    name = printable(path)
    try:
        if os.lstat(path).st_size > _MAX_SUMMARY_BYTES:
            raise SummaryError(f'{name}: over {_MAX_SUMMARY_BYTES >> 20} MB; not a summary of '
                               'this tool (remove it, or choose another --out-dir)')
        with open(path, 'rb') as file:
            data = json.loads(file.read())
        return RunSettings.from_json(data.get('settings') if isinstance(data, dict) else None)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise SummaryError(f'{name}: cannot read ({printable(err.strerror or str(err))})') \
            from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, malformed settings
        raise SummaryError(f'{name}: not a summary of this tool ({printable(str(err))}); '
                           'remove it, or choose another --out-dir') from None


def check_resume(previous: Optional[RunSettings], current: RunSettings, out_dir: Path) -> None:
    """Refuse to skip outputs made with other settings than ``current``.

    Called only when the run would skip existing outputs (that is, without ``--overwrite``).
    """
    if previous is None:
        return
    differences = current.differences(previous)
    if differences:
        raise SummaryError(
            f'{printable(out_dir / SUMMARY_NAME)}: the outputs in {printable(out_dir)} were made '
            f'with {", ".join(differences)}; pass --overwrite to redo them, or choose another '
            '--out-dir')


@dataclasses.dataclass
class RunSummary:
    """What a batch run did so far; :meth:`write` puts it in the output folder."""

    out_dir: Path
    engine: str
    settings: RunSettings
    model: Path
    done: List[Dict[str, str]] = dataclasses.field(default_factory=list)
    skipped: List[Dict[str, str]] = dataclasses.field(default_factory=list)
    failed: List[Dict[str, Optional[str]]] = dataclasses.field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.out_dir / SUMMARY_NAME

    def add_done(self, source: Path, output: Path) -> None:
        self.done.append({'input': os.fsdecode(source), 'output': os.fsdecode(output)})

    def add_skipped(self, source: Path, output: Path, reason: str) -> None:
        self.skipped.append({'input': os.fsdecode(source), 'output': os.fsdecode(output),
                             'reason': reason})

    def add_failed(self, source: Optional[Path], reason: str) -> None:
        self.failed.append({'input': None if source is None else os.fsdecode(source),
                            'reason': reason})

    def write(self, state: str, seconds: float, not_run: int = 0) -> None:
        """Replace the summary file atomically; ``state``: running, finished, interrupted, or
        engine failed (Ray could not start or connect, or the pool broke).

        ``ensure_ascii`` keeps any file name (undecodable bytes included) valid JSON.
        """
        data = {
            'tool': 'srcnn-upscale', 'format': FORMAT_VERSION, 'engine': self.engine,
            'state': state, 'seconds': round(seconds, 3), 'model': os.fsdecode(self.model),
            'settings': self.settings.to_json(),
            'counts': {'done': len(self.done), 'skipped': len(self.skipped),
                       'failed': len(self.failed), 'not_run': not_run},
            'done': self.done, 'skipped': self.skipped, 'failed': self.failed,
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, 'w', overwrite=True) as file:
            json.dump(data, file, indent=1, ensure_ascii=True)
            file.write('\n')
