"""What every benchmark reports the same way: percentiles, rounding, the machine, the commit.

The benchmarks run as scripts (``uv run python bench/<name>.py``): each puts the repository root
first on ``sys.path`` before importing this module as ``bench.common``.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def rnd(value: float, digits: int = 3) -> float:
    return round(value, digits)


def git_commit() -> dict[str, Any]:
    """The commit measured, and whether the tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def machine(load_at_start: float, *, dovecot: bool = False) -> dict[str, Any]:
    """The machine the figures come from (and how busy it was); ``dovecot``: its version too."""
    model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    found: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "loadavg_1m_at_start": rnd(load_at_start, 2),
        "loadavg_1m_at_end": rnd(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
    if dovecot:
        version = None
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            version = subprocess.run(
                ["/usr/sbin/dovecot", "--version"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        found["dovecot"] = version
    return found
