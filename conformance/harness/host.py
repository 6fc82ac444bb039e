"""Facts about the host CPU read from the operating system (no framework): its model name for the results'
environment and its feature flags for known-failure entries conditioned with ``cpu_flags``."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_cpuinfo(text: str) -> frozenset[str] | None:
    """The flags every processor of a Linux ``/proc/cpuinfo`` lists (``flags`` on x86, ``Features`` on ARM)."""
    per_cpu = [frozenset(value.lower().split()) for key, sep, value in (line.partition(":") for line in
                                                                        text.splitlines())
               if sep and key.strip() in ("flags", "Features")]
    return frozenset.intersection(*per_cpu) if per_cpu else None


@functools.lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str] | None:
    """The CPU flags of this machine (lower case), or None where they cannot be read (see the module docstring)."""
    if sys.platform.startswith("linux"):
        try:
            return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        except OSError:
            return None
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                                 capture_output=True, text=True, timeout=5, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        return frozenset(out.lower().replace(".", "_").split()) or None
    return None
