"""What a measurement ran on: one description for the benchmarks and the studies.

Standard library only: the benchmarks and the studies record it without loading each
other (`reports`).
"""

import datetime
import os
import pathlib
import platform
from typing import Optional


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def describe(load_average: Optional[float] = None) -> dict:
  """CPU, cores, memory, platform, Python, the date and the 1-minute load average
  (`load_average`, else now)."""
  return {
      "cpu": cpu_model(), "logical_cores": os.cpu_count(),
      "usable_cores": len(os.sched_getaffinity(0)),
      "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
      "platform": platform.platform(), "python": platform.python_version(),
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "load_average_now": (os.getloadavg()[0] if load_average is None
                           else load_average),
  }
