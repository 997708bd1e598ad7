"""Benchmark results shaped like a full run's, with made-up times (for the report's
tests in `tests/test_benchmarks.py` and `tests/test_serving_benchmark.py`)."""

from benchmarks import module_level
from benchmarks import network_level
from benchmarks import operators
from benchmarks import run
from benchmarks import timing
from gsa_keras import paper


def timing_json(seconds):
  """A `timing.Timing` of three equal repeats, as results hold it."""
  return timing.Timing((seconds,) * 3, 1).to_json()


def synthetic():
  """Results shaped like a full run's, with made-up times."""
  module_rows = []
  for shape in module_level.STAGE_SHAPES:
    for batch in (1, 8):
      for mode in operators.MODES:
        for pass_ in operators.PASSES:
          ops_ = {operators.GSA: {"timing": timing_json(1e-3), "flops": 10**7,
                                  "gflops_per_second": 10.0},
                  operators.CONV: {"timing": timing_json(2e-3), "flops": 10**7,
                                   "gflops_per_second": 5.0},
                  operators.DENSE: {"skipped": "out of memory (needs ~9.0 GB)"}}
          module_rows.append({"shape": list(shape), "batch": batch, "mode": mode,
                              "pass": pass_, "operators": ops_,
                              "ratios": {"gsa/conv3x3": 0.5 if shape[0] > 7 else 1.2}})
  network_costs = {
      key: {"name": name, "label": name, "params": 1e7, "flops": 7e9,
            "paper_params": 1.8e7, "paper_flops": 7.2e9, "paper_runtime_ms": runtime}
      for (key, name), runtime in zip(
          network_level.network_names(50).items(),
          (paper.network("GSA-ResNet-50").runtime_ms,
           paper.network("ResNet-50").runtime_ms))}
  network_rows = [{"batch": 8, "mode": "graph", "step": step,
                   "timings": {k: timing_json(0.1) for k in network_costs},
                   "gflops_per_second": {}, "ratio": ratio}
                  for step, ratio in zip(network_level.STEPS, (1.2, 0.9))]
  points = [{"size": s, "pixels": s * s, "status": "ok", "seconds": 1e-7 * s**3,
             "added_bytes": 2**20 * s} for s in (64, 128, 256)]
  dense = [{"size": 64, "pixels": 4096, "status": "ok", "seconds": 0.5,
            "added_bytes": 2**29},
           {"size": 128, "pixels": 16384, "status": "out of memory (needs ~17.2 GB)",
            "estimated_bytes": 17.2 * 2**30},
           {"size": 256, "pixels": 65536, "status": "not run"}]
  return {
      "machine": run.machine(), "quick": False, "command": "python -m benchmarks",
      "network_level": {"model_id": 50, "input_size": 224, "costs": network_costs,
                        "rows": network_rows},
      "module_level": module_rows,
      "scale": {"channels": 64, "batch": 1, "memory_budget_bytes": 8 * 2**30,
                operators.GSA: {"points": points,
                                "exponents": {"time": 1.5, "memory": 0.5,
                                              "fit_sizes": [64, 128, 256]}},
                operators.DENSE: {"points": dense,
                                  "exponents": {"time": None, "memory": None,
                                                "fit_sizes": [64]}}},
  }
