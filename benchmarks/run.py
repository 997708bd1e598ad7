"""Runs the benchmark suite and writes its report: `python -m benchmarks`.

  python -m benchmarks --out benchmark_results            # the full suite
  python -m benchmarks --quick --out /tmp/gsa_bench       # a smoke run, tiny sizes
  python -m benchmarks --parts network,module --out DIR   # some parts only

Writes `results.json` (after each part), `results.md`, the summary `README.md` and PNG
plots into `--out` (`benchmarks.report`).
A run of some parts into a directory whose `results.json` holds others (of the same
kind, quick or full) keeps those: each part records the command and machine that
measured it. Measure on a quiet machine: other processes skew the times (the report
records the load average at the start and the end).
"""

import argparse
import dataclasses
import gc
import json
import os
import pathlib
import sys

import tensorflow as tf
import tf_keras

from benchmarks import module_level
from benchmarks import network_level
from benchmarks import report
from benchmarks import scale
from benchmarks import serving
from reports import machine as machine_description

PARTS = ("network", "module", "scale", "serving")
_RESULT_KEYS = {"network": "network_level", "module": "module_level", "scale": "scale",
                "serving": "serving"}


def settings(quick: bool, memory_budget_bytes: int, repeats=None) -> dict:
  """Each part's settings: the issue's sizes, or tiny ones for a smoke run."""
  if quick:
    parts = {
        "module": module_level.Settings(
            shapes=module_level.QUICK_SHAPES, batches=(1, 2), warmup=1, repeats=2),
        # One batch: each network is traced once per batch, step and mode. SAN10 (its
        # footprints narrowed to the 32x32 input's maps); the peak memory of two
        # networks' inference, each probe being a fresh process.
        "network": network_level.Settings(
            model_id=26, input_size=32, num_classes=10, batches=(2,),
            modes=("graph",), warmup=1, repeats=2, san_depth=10, memory_batch=2,
            memory_steps=(network_level.INFERENCE,),
            memory_networks=(network_level.GSA, network_level.SAN_PATCHWISE)),
        "scale": scale.Settings(sizes=scale.QUICK_SIZES, channels=16, warmup=1,
                                repeats=2, fit_from=0, timeout_seconds=300),
        # Two networks: exporting is most of the serving part's time.
        "serving": serving.Settings(
            model_id=26, input_size=32, num_classes=10, batches=(1, 2), warmup=1,
            repeats=2, networks=(network_level.GSA, network_level.RESNET)),
    }
  else:
    parts = {"module": module_level.Settings(), "network": network_level.Settings(),
             "scale": scale.Settings(), "serving": serving.Settings()}
  parts["module"] = _replace(parts["module"], memory_budget_bytes=memory_budget_bytes,
                             repeats=repeats)
  parts["scale"] = _replace(parts["scale"], memory_budget_bytes=memory_budget_bytes,
                            repeats=repeats)
  parts["network"] = _replace(parts["network"], repeats=repeats)
  # A p99 needs many calls: serving keeps its own rounds unless asked for more.
  if repeats is not None and repeats > parts["serving"].repeats:
    parts["serving"] = _replace(parts["serving"], repeats=repeats)
  return parts


def _replace(part_settings, **changes):
  return dataclasses.replace(
      part_settings, **{k: v for k, v in changes.items() if v is not None})


def machine() -> dict:
  """What the numbers were measured on (`reports.machine.describe`)."""
  described = machine_description.describe()
  described["load_average_start"] = described.pop("load_average_now")
  return dict(described, tensorflow=tf.__version__)


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def earlier_results(out_dir: pathlib.Path, quick: bool, parts) -> dict:
  """The parts of `out_dir`'s results.json that this run does not measure again, each
  with the command and machine that measured it ({} if none, or of the other kind)."""
  path = out_dir / report.RESULTS_JSON
  if not path.exists():
    return {}
  earlier = json.loads(path.read_text())
  if bool(earlier.get("quick")) != quick:
    return {}
  kept = {"parts": {}}
  for part, key in _RESULT_KEYS.items():
    if part not in parts and key in earlier:
      kept[key] = earlier[key]
      kept["parts"][key] = report.provenance(earlier, key)
  return kept if kept["parts"] else {}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks", description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="\n".join(__doc__.splitlines()[1:]))
  parser.add_argument("--out", default="benchmark_results",
                      help="results directory (default: %(default)s)")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: tiny shapes and networks, 2 repeats (~5 min, "
                           "most of it the serving part's exports)")
  parser.add_argument("--parts", default=",".join(PARTS),
                      help=f"comma-separated subset of {','.join(PARTS)}")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed rounds per comparison (default: module 10, "
                           "network and scale 5, serving 30; serving takes at least 30)")
  parser.add_argument("--memory_budget_gb", type=float, default=8.0,
                      help="largest memory a dense attention or one scale probe may "
                           "take (default: %(default)s)")
  args = parser.parse_args(argv)
  parts = [p.strip() for p in args.parts.split(",") if p.strip()]
  unknown = sorted(set(parts) - set(PARTS))
  if unknown:
    parser.error(f"unknown --parts {unknown}; choose from {list(PARTS)}")

  part_settings = settings(args.quick, int(args.memory_budget_gb * 2**30), args.repeats)
  runners = {"network": network_level.run, "module": module_level.run,
             "scale": scale.run, "serving": serving.run}
  out_dir = pathlib.Path(args.out)
  out_dir.mkdir(parents=True, exist_ok=True)
  this_run = {"machine": machine(), "command": "python -m benchmarks " + " ".join(
      argv if argv is not None else sys.argv[1:])}
  results = {**this_run, "quick": args.quick,
             **earlier_results(out_dir, args.quick, parts)}
  for part in PARTS:
    if part in parts:
      key = _RESULT_KEYS[part]
      results[key] = runners[part](part_settings[part], log=_log)
      results["machine"]["load_average_end"] = os.getloadavg()[0]
      if "parts" in results:
        results["parts"][key] = this_run
      (out_dir / report.RESULTS_JSON).write_text(json.dumps(results, indent=1))
      # The next part starts without this part's models and traced functions.
      tf_keras.backend.clear_session()
      gc.collect()
  for path in report.write(results, out_dir):
    print(path)
  return results


if __name__ == "__main__":
  main()
