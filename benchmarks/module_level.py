"""Module level: GSA vs Conv2D 3x3 vs local, SAN and dense attention at ResNet-50's stage
shapes.

For every stage shape, batch size, execution mode (graph, XLA) and pass (forward,
forward+backward), the operators (`operators.OPERATORS`) are timed side by side in one
process; the dense attention is skipped where its attention maps would not fit the
memory budget.
"""

import dataclasses
from typing import Callable, Dict, List, Sequence, Tuple

import tensorflow as tf

from benchmarks import operators
from benchmarks import timing

# The 3x3 convolutions of ResNet-50's four residual groups: (height, width, channels).
STAGE_SHAPES = ((56, 56, 64), (28, 28, 128), (14, 14, 256), (7, 7, 512))
QUICK_SHAPES = ((8, 8, 16),)


@dataclasses.dataclass(frozen=True)
class Settings:
  shapes: Tuple[Tuple[int, int, int], ...] = STAGE_SHAPES
  batches: Tuple[int, ...] = (1, 8)
  modes: Tuple[str, ...] = tuple(operators.MODES)
  passes: Tuple[str, ...] = operators.PASSES
  warmup: int = 2
  repeats: int = 10
  memory_budget_bytes: int = 8 * 2**30


def _measure_case(layers: Dict[str, object], input_shape: Sequence[int], mode: str,
                  pass_: str, settings: Settings) -> dict:
  """One row: every operator on one input shape, mode and pass."""
  inputs = tf.random.normal(input_shape)
  functions, skipped = {}, {}
  for name, layer in layers.items():
    needed = operators.estimated_bytes(name, input_shape, pass_)
    if needed is not None and needed > settings.memory_budget_bytes:
      skipped[name] = operators.out_of_memory(needed)
      continue
    functions[name] = operators.step_function(layer, inputs, pass_,
                                              operators.MODES[mode])
  timings = timing.time_side_by_side(functions, settings.warmup, settings.repeats)
  factor = 1 if pass_ == operators.FORWARD else operators.BACKWARD_FLOPS_FACTOR
  results = {}
  for name, layer in layers.items():
    if name in skipped:
      results[name] = {"skipped": skipped[name]}
      continue
    flops = factor * operators.forward_flops(name, layer, input_shape)
    results[name] = {"timing": timings[name].to_json(), "flops": flops,
                     "gflops_per_second": flops / timings[name].median / 1e9}
  ratios = {f"{operators.GSA}/{name}": timing.paired_ratio(timings[operators.GSA],
                                                           timings[name])
            for name in timings if name != operators.GSA}
  return {"shape": list(input_shape[1:]), "batch": input_shape[0], "mode": mode,
          "pass": pass_, "operators": results, "ratios": ratios}


def run(settings: Settings, log: Callable[[str], None] = print) -> List[dict]:
  """Measures every case of `settings`; returns one row per case."""
  rows = []
  for height, width, channels in settings.shapes:
    layer_shape = (None, height, width, channels)
    layers = {name: operators.build(name, layer_shape) for name in operators.OPERATORS}
    for batch in settings.batches:
      for mode in settings.modes:
        for pass_ in settings.passes:
          input_shape = (batch, height, width, channels)
          row = _measure_case(layers, input_shape, mode, pass_, settings)
          rows.append(row)
          log(f"module {height}x{width}x{channels} batch {batch} {mode} {pass_}: "
              f"{_summary(row)}")
  return rows


def _summary(row: dict) -> str:
  parts = []
  for name, result in row["operators"].items():
    parts.append(f"{name} {result['timing']['median'] * 1e3:.2f} ms" if "timing" in result
                 else f"{name} {result['skipped']}")
  return ", ".join(parts)
