"""The suite's one timing helper: warm-up, interleaved rounds, medians, paired ratios.

Functions compared with each other are timed in the same rounds, one after the other
and in rotating order, so a change of machine load during the run slows all of them
alike; ratios are medians of the per-round ratios. With `record_calls`, every timed
call's own latency is kept too, for percentiles (p50, p99).
"""

import dataclasses
import math
import statistics
import time
from typing import Callable, Dict, Mapping, Tuple


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds per call, one sample per round (each the mean of `calls` calls), and,
  if recorded, the seconds of every timed call (`latencies`, in the order made)."""
  samples: Tuple[float, ...]
  calls: int
  latencies: Tuple[float, ...] = ()

  @property
  def median(self) -> float:
    return statistics.median(self.samples)

  def percentile(self, percent: float) -> float:
    """The `percent` percentile of the recorded call latencies (linear
    interpolation between the closest ranks, as numpy.percentile)."""
    if not self.latencies:
      raise ValueError("No call latencies were recorded (record_calls=True).")
    ordered = sorted(self.latencies)
    position = (len(ordered) - 1) * percent / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

  def to_json(self) -> dict:
    result = {"median": self.median, "samples": list(self.samples), "calls": self.calls}
    if self.latencies:
      result["latencies"] = list(self.latencies)
    return result


def time_side_by_side(functions: Mapping[str, Callable[[], object]],
                      warmup: int = 2,
                      repeats: int = 10,
                      min_sample_seconds: float = 0.02,
                      record_calls: bool = False) -> Dict[str, Timing]:
  """Times each function in `repeats` interleaved rounds, after `warmup` calls.

  Args:
    functions: name -> callable without arguments. A TensorFlow function returns
      when its result is computed, so the wall time of a call is its run time.
    warmup: untimed calls of each function first (tracing, compilation, caches).
    repeats: rounds; each round times every function once, in an order rotated by
      one per round.
    min_sample_seconds: a sample repeats a fast function until it lasts about this
      long, so the timer's resolution and Python overhead do not dominate.
    record_calls: also time every call on its own (`Timing.latencies`:
      `repeats` x `calls` of them per function).

  Returns:
    name -> `Timing`.
  """
  names = list(functions)
  calls = {}
  for name in names:
    for _ in range(warmup):
      functions[name]()
    start = time.perf_counter()
    functions[name]()
    once = time.perf_counter() - start
    calls[name] = max(1, math.ceil(min_sample_seconds / max(once, 1e-9)))
  samples = {name: [] for name in names}
  latencies = {name: [] for name in names}
  for round_number in range(repeats):
    shift = round_number % len(names)
    for name in names[shift:] + names[:shift]:
      function, count = functions[name], calls[name]
      start = previous = time.perf_counter()
      for _ in range(count):
        function()
        if record_calls:
          now = time.perf_counter()
          latencies[name].append(now - previous)
          previous = now
      samples[name].append((time.perf_counter() - start) / count)
  return {name: Timing(tuple(samples[name]), calls[name], tuple(latencies[name]))
          for name in names}


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
  """Median over rounds of numerator / denominator, from the same rounds."""
  return statistics.median(a / b for a, b in zip(numerator.samples, denominator.samples))
