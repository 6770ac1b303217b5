"""Peak resident memory of this process, resettable per measurement where Linux allows it.

The peak is ``resource.getrusage``'s ``ru_maxrss`` (the whole process). Writing ``5`` to
``/proc/self/clear_refs`` resets that high-water mark to the current RSS (Linux >= 4.0), so a
measurement can be attributed to the code that ran after the reset.
"""
import resource
from pathlib import Path

METHOD = 'peak RSS (resource.getrusage ru_maxrss, whole process), '
RESET = {True: 'reset per engine via /proc/self/clear_refs',
         False: 'NOT reset per engine (no /proc/self/clear_refs): peaks are cumulative'}


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark; False where not allowed."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """The RSS high-water mark in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def method_description() -> str:
    """How memory is measured here, for reports (resets the peak as a side effect)."""
    return METHOD + RESET[reset_peak_rss()]
