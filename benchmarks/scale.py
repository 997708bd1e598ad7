"""Scale: one module's time and peak memory from small to large images.

Every (operator, size) runs in a fresh process (`python -m benchmarks.scale --probe
SPEC`) that reports, as one JSON line, the median forward time and how much its peak
resident memory grew while running: the peak (`VmHWM`) after the runs minus the
resident memory before them, the peak having been reset to it (Linux's
`/proc/self/clear_refs`; where that is not allowed, minus the earlier peak). The probe caps
its data segment (`RLIMIT_DATA`) at what it had plus the memory budget, so a size that
does not fit fails with an out-of-memory error instead of swapping the machine. The
dense attention's need is estimated first: sizes beyond the budget are recorded as out
of memory without being run. Growth exponents are least-squares fits of log(time) and
log(memory) against log(pixels).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from benchmarks import operators
from benchmarks import timing

SIZES = (32, 48, 64, 96, 128, 192, 256, 384, 512)
QUICK_SIZES = (8, 16)
SCALED_OPERATORS = (operators.GSA, operators.LOCAL, operators.DENSE)
_REPO = pathlib.Path(__file__).resolve().parents[1]
_KB = 1024  # /proc/self/status reports kilobytes.
_PROC_STATUS = pathlib.Path("/proc/self/status")


@dataclasses.dataclass(frozen=True)
class Settings:
  sizes: Tuple[int, ...] = SIZES
  channels: int = 64
  batch: int = 1
  warmup: int = 2
  repeats: int = 5
  memory_budget_bytes: int = 8 * 2**30
  fit_from: int = 64  # Smallest side used in the fits: small sizes are overhead.
  timeout_seconds: float = 1800.0


def fit_exponent(pixels: Sequence[float], values: Sequence[float]) -> float:
  """The slope of the least-squares line through (log pixels, log values)."""
  if len(pixels) < 2:
    raise ValueError(f"A growth exponent needs at least 2 points, got {len(pixels)}.")
  slope, _ = np.polyfit(np.log(pixels), np.log(values), 1)
  return float(slope)


# -- The probe: runs in its own process. -----------------------------------------------


def _status_bytes(field: str) -> int:
  """A memory figure of this process from /proc/self/status, e.g. 'VmHWM'."""
  for line in _PROC_STATUS.read_text().splitlines():
    if line.startswith(field + ":"):
      return int(line.split()[1]) * _KB
  raise RuntimeError(f"No {field} in {_PROC_STATUS}.")


def reset_peak_rss() -> int:
  """Resets the peak resident memory to the current one where Linux allows it;
  returns the peak to measure growth from."""
  try:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
  except OSError:
    pass
  return _status_bytes("VmHWM")


def peak_rss_bytes() -> int:
  return _status_bytes("VmHWM")


def probe(spec: dict) -> dict:
  """Times one operator at one size; what a fresh process prints as JSON."""
  shape = (spec["batch"], spec["size"], spec["size"], spec["channels"])
  layer = operators.build(spec["operator"], (None,) + shape[1:])
  inputs = tf.random.normal(shape)
  step = operators.step_function(layer, inputs, operators.FORWARD, jit_compile=False)
  limit = _status_bytes("VmData") + spec["memory_budget_bytes"]
  _, hard = resource.getrlimit(resource.RLIMIT_DATA)
  if hard != resource.RLIM_INFINITY:
    limit = min(limit, hard)
  resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
  before = reset_peak_rss()
  try:
    measured = timing.time_side_by_side({spec["operator"]: step}, spec["warmup"],
                                        spec["repeats"])[spec["operator"]]
  except (tf.errors.ResourceExhaustedError, MemoryError):
    budget = operators.format_bytes(spec["memory_budget_bytes"])
    return {"status": f"out of memory (over the {budget} budget)"}
  return {"status": "ok", "seconds": measured.median, "timing": measured.to_json(),
          "added_bytes": peak_rss_bytes() - before}


# -- The driver. ---------------------------------------------------------------------


def run_probe(spec: dict, timeout_seconds: float, module: str = "benchmarks.scale") -> dict:
  """Runs `module`'s probe of `spec` (`python -m MODULE --probe JSON`, by default this
  module's `probe`) in a fresh Python process; returns its JSON answer."""
  environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                     PYTHONPATH=os.pathsep.join(
                         filter(None, [str(_REPO), os.environ.get("PYTHONPATH")])))
  try:
    completed = subprocess.run(
        [sys.executable, "-m", module, "--probe", json.dumps(spec)],
        capture_output=True, text=True, env=environment, timeout=timeout_seconds,
        check=False)
  except subprocess.TimeoutExpired:
    return {"status": f"timed out after {timeout_seconds:.0f} s"}
  lines = completed.stdout.strip().splitlines()
  if completed.returncode == 0 and lines:
    return json.loads(lines[-1])
  if completed.returncode == -signal.SIGKILL or "bad_alloc" in completed.stderr:
    return {"status": f"out of memory (process ended with {completed.returncode})"}
  last_line = (completed.stderr.strip().splitlines() or [""])[-1]
  return {"status": f"failed (exit {completed.returncode}): {last_line}"}


def _fits(points: List[dict], fit_from: int) -> Dict[str, Optional[float]]:
  measured = [p for p in points if p["status"] == "ok"]
  used = [p for p in measured if p["size"] >= fit_from]
  if len(used) < 2:
    used = measured
  fits = {"time": None, "memory": None, "fit_sizes": [p["size"] for p in used]}
  if len(used) >= 2:
    pixels = [p["pixels"] for p in used]
    fits["time"] = fit_exponent(pixels, [p["seconds"] for p in used])
    if all(p["added_bytes"] > 0 for p in used):
      fits["memory"] = fit_exponent(pixels, [p["added_bytes"] for p in used])
  return fits


def run(settings: Settings, log: Callable[[str], None] = print) -> dict:
  """Probes every operator at every size; a size past an out-of-memory one is not run."""
  results = {"channels": settings.channels, "batch": settings.batch,
             "memory_budget_bytes": settings.memory_budget_bytes}
  for operator in SCALED_OPERATORS:
    points, exhausted = [], None
    for size in settings.sizes:
      shape = (settings.batch, size, size, settings.channels)
      needed = operators.estimated_bytes(operator, shape)
      if exhausted:
        answer = {"status": exhausted}
      elif needed is not None and needed > settings.memory_budget_bytes:
        answer = {"status": operators.out_of_memory(needed)}
      else:
        answer = run_probe(dict(operator=operator, size=size, channels=settings.channels,
                                batch=settings.batch, warmup=settings.warmup,
                                repeats=settings.repeats,
                                memory_budget_bytes=settings.memory_budget_bytes),
                           settings.timeout_seconds)
      if answer["status"].startswith("out of memory") and not exhausted:
        exhausted = f"not run: {size}x{size} was out of memory"
      points.append({"size": size, "pixels": size * size, "estimated_bytes": needed,
                     **answer})
      log(f"scale {operator} {size}x{size}: " + (
          f"{answer['seconds'] * 1e3:.1f} ms, +{answer['added_bytes'] / 2**20:.0f} MB"
          if answer["status"] == "ok" else answer["status"]))
    results[operator] = {"points": points, "exponents": _fits(points, settings.fit_from)}
  return results


def probe_main(probe_function: Callable[[dict], dict], fields: str, description: str,
               argv=None) -> None:
  """The command line of a probe (`run_probe`'s other end): `--probe JSON` in, the
  answer of `probe_function` out, as one JSON line."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--probe", required=True, help=f"JSON: {fields}")
  args = parser.parse_args(argv)
  print(json.dumps(probe_function(json.loads(args.probe))))


def main(argv=None):
  probe_main(probe, "operator, size, channels, batch, warmup, repeats, "
             "memory_budget_bytes", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
  main()
