"""The suite's report: a Markdown file and PNG plots from the results' JSON.

`python -m benchmarks.report RESULTS_DIR` draws them again from `RESULTS_DIR/results.json`:
`results.md` (every table), one PNG per measured part, and `README.md`, the summary the
documentation links to (the command and machine of each part, the targets table and,
if the results have the serving part, the serving table and which export to serve).
All three are generated: edit the code here, not the files.
"""

import argparse
import json
import pathlib
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks import module_level
from benchmarks import network_level
from benchmarks import operators
from benchmarks import serving
from reports import tables

RESULTS_JSON = "results.json"
REPORT_MD = "results.md"
SUMMARY_MD = "README.md"
MODULE_TARGET = 1.0
NETWORK_TARGET = 1.0
SCALE_TARGET = {"size": 256, "channels": 64, "bytes": 2**30, "seconds": 0.150,
                "exponent": 1.5}
TARGET_BATCH = 8
_GB = 2**30
GENERATED_NOTE = ("<!-- Written by `python -m benchmarks.report RESULTS_DIR` from "
                  "RESULTS_DIR/results.json: do not edit. -->")
# The parts the targets table is made from (serving has its own table).
_TARGET_PARTS = ("network_level", "module_level", "scale")
_RESULT_PARTS = _TARGET_PARTS + ("serving",)


# -- Formatting. -----------------------------------------------------------------------


def _ms(seconds: Optional[float]) -> str:
  return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _num(value: Optional[float], digits: int = 2, scale: float = 1.0,
         unit: str = "") -> str:
  return "-" if value is None else f"{value / scale:.{digits}f}{unit}"


def _yes(met: bool) -> str:
  return "yes" if met else "**no**"


def _operator_cell(entry: dict, key: str) -> str:
  if "skipped" in entry:
    return entry["skipped"] if key == "time" else "-"
  if key == "time":
    return _ms(entry["timing"]["median"])
  return _num(entry["gflops_per_second"], 1)


# -- Sections. -------------------------------------------------------------------------


def machine_section(machine: dict) -> str:
  load = machine.get("load_average_start"), machine.get("load_average_end")
  return (f"Machine: {machine['cpu']}, {machine['usable_cores']} usable cores of "
          f"{machine['logical_cores']}, {machine['memory_gb']:.0f} GB RAM; "
          f"{machine['platform']}; Python {machine['python']}, TensorFlow "
          f"{machine['tensorflow']}; {machine['date']}. Load average (1 min) at start "
          f"{_num(load[0])}, at end {_num(load[1])}.")


def provenance(results: dict, key: str) -> dict:
  """The command and machine that measured part `key` of `results` (a run of some
  parts into an earlier run's directory records them per part)."""
  return results.get("parts", {}).get(key) or {"command": results["command"],
                                               "machine": results["machine"]}


def _runs(results: dict, keys: Sequence[str]) -> List[tuple]:
  """[(part keys, provenance)] of the parts present among `keys`, one per run."""
  groups = []
  for key in keys:
    if key not in results:
      continue
    measured_by = provenance(results, key)
    for parts, other in groups:
      if other == measured_by:
        parts.append(key)
        break
    else:
      groups.append(([key], measured_by))
  return groups


_PART_TITLES = {"network_level": "network level", "module_level": "module level",
                "scale": "scale", "serving": "serving"}


def runs_line(results: dict, keys: Sequence[str]) -> str:
  """'Command: `...`. Machine: ...' of the run that measured the parts `keys`, or one
  such paragraph per run, named by its parts, if several runs did."""
  groups = _runs(results, keys) or [(list(keys), {"command": results["command"],
                                                  "machine": results["machine"]})]
  lines = [f"Command: `{run['command']}`. {machine_section(run['machine'])}"
           for _, run in groups]
  if len(groups) == 1:
    return lines[0]
  return "\n\n".join(f"{', '.join(_PART_TITLES[k] for k in parts).capitalize()}: "
                     f"{line}" for (parts, _), line in zip(groups, lines))


def module_section(rows: List[dict]) -> str:
  # The operators the run measured (a run older than the local attention has three).
  names = [n for n in operators.OPERATORS if n in rows[0]["operators"]]
  header = (["shape", "batch", "mode", "pass"] +
            [f"{operators.LABELS[n]} ms" for n in names] +
            [f"{operators.LABELS[n]} GFLOP/s" for n in names] +
            [f"GSA / {operators.LABELS[n]}" for n in names[1:]])
  body = []
  for row in rows:
    cells = row["operators"]
    body.append(["x".join(map(str, row["shape"])), row["batch"], row["mode"], row["pass"]] +
                [_operator_cell(cells[n], "time") for n in names] +
                [_operator_cell(cells[n], "flops") for n in names] +
                [_num(row["ratios"].get(f"{operators.GSA}/{n}")) for n in names[1:]])
  return ("GSA vs Conv2D 3x3 (same channels) vs local 7x7 softmax attention (Table 3's "
          "baseline) vs SAN's pairwise and patchwise 7x7 self-attention (Table 3's other "
          "baseline, as in the GSA-ResNet structure) vs dense global softmax attention "
          "(the local and dense attention with the same 8 heads and projection as GSA), "
          "one module, float32. Times are medians of interleaved rounds; "
          "ratios are medians of per-round ratios. GFLOP/s counts FLOPs as "
          "`gsa_keras.flops` does; forward+backward counts 3x the forward FLOPs.\n\n" +
          tables.markdown(header, body))


def network_section(network: dict) -> str:
  costs = network["costs"]
  cost_rows = [[c["label"], _num(c["params"], 2, 1e6, "M"),
                _num(c["paper_params"], 1, 1e6, "M"), _num(c["flops"], 2, 1e9, "G"),
                _num(c["paper_flops"], 1, 1e9, "G"), _num(c["paper_runtime_ms"], 1)]
               for c in costs.values()]
  names = {key: c["name"] for key, c in costs.items()}
  ratio_names = [(pair, _ratio_label(pair, names)) for pair in _RATIOS
                 if pair in network["rows"][0].get("ratios", {})]
  time_rows = [[r["batch"], r["mode"], r["step"]] +
               [_ms(r["timings"][k]["median"]) for k in names] +
               [_num(r["ratio"])] + [_num(r["ratios"][pair]) for pair, _ in ratio_names] +
               [_num(r["gflops_per_second"].get(k), 1) for k in names]
               for r in network["rows"]]
  return (f"Model Garden `ClassificationModel`s at {network['input_size']}x"
          f"{network['input_size']}, float32; trainable parameters, FLOPs of one image "
          "(multiply-accumulates x2, as the paper counts them); the paper's runtime is "
          "one image on a TPUv3 (Table 6). A training step is forward, backward and an "
          "SGD update; its GFLOP/s counts 3x the forward FLOPs.\n\n" +
          tables.markdown(["network", "params", "paper", "FLOPs", "paper",
                           "paper runtime (ms)"], cost_rows) + "\n\n" +
          tables.markdown(["batch", "mode", "step"] +
                          [f"{n} ms" for n in names.values()] +
                          ["ratio"] + [label for _, label in ratio_names] +
                          [f"{n} GFLOP/s" for n in names.values()], time_rows) +
          _memory_table(network, names))


def _memory_table(network: dict, names: Dict[str, str]) -> str:
  """The peak-memory probes' table ('' for a run without them)."""
  memory = network.get("memory")
  if not memory:
    return ""
  steps = list(dict.fromkeys(step for by_step in memory.values() for step in by_step))
  rows = [[names.get(key, key)] + [_memory_cell(by_step.get(step)) for step in steps]
          for key, by_step in memory.items()]
  return ("\n\nPeak memory: how much the peak resident memory of a fresh process grew "
          f"over two calls at batch {network['memory_batch']}, graph mode, from after the "
          "network was built (MB).\n\n" +
          tables.markdown(["network"] + [f"{step} (MB)" for step in steps], rows))


def _memory_cell(answer: Optional[dict]) -> str:
  if answer is None:
    return "-"
  if answer["status"] != "ok":
    return answer["status"]
  return _num(answer["added_bytes"], 0, 2**20)


# The network ratios shown beside GSA-ResNet / ResNet, when the run has them: the
# paper's runtime claim (local vs GSA) and Table 5's GSA in groups 2-4 against both.
# SAN (Table 3's other baseline) against GSA too.
_RATIOS = (f"{network_level.LOCAL}/{network_level.GSA}",
           f"{network_level.SAN_PAIRWISE}/{network_level.GSA}",
           f"{network_level.SAN_PATCHWISE}/{network_level.GSA}",
           f"{network_level.GSA_GROUPS_234}/{network_level.GSA}",
           f"{network_level.GSA_GROUPS_234}/{network_level.RESNET}")


def _ratio_label(pair: str, names: dict) -> str:
  numerator, denominator = pair.split("/")
  return f"{names[numerator]} / {names[denominator]}"


def paper_runtime_ratio(network: dict, pair: str) -> Optional[float]:
  """The paper's TPUv3 runtime ratio of a pair of networks, if it has both runtimes."""
  runtimes = [network["costs"].get(key, {}).get("paper_runtime_ms")
              for key in pair.split("/")]
  return None if None in runtimes else runtimes[0] / runtimes[1]


def _scale_cell(point: dict, key: str) -> str:
  if point["status"] != "ok":
    return point["status"] if key == "seconds" else "-"
  if key == "seconds":
    return _ms(point["seconds"])
  return _num(point["added_bytes"], 0, 2**20)


def scale_section(scale: dict) -> str:
  names = [n for n in operators.OPERATORS if n in scale]
  sizes = [p["size"] for p in scale[names[0]]["points"]]
  rows = []
  for index, size in enumerate(sizes):
    points = [scale[n]["points"][index] for n in names]
    rows.append([f"{size}x{size}", size * size] +
                [_scale_cell(p, key) for p in points for key in ("seconds", "bytes")])
  header = ["size", "pixels"] + [f"{operators.LABELS[n]} {what}" for n in names
                                 for what in ("ms", "added MB")]
  exponents = "; ".join(
      f"{operators.LABELS[n]}: time ~ pixels^{_num(scale[n]['exponents']['time'])}, "
      f"memory ~ pixels^{_num(scale[n]['exponents']['memory'])} (fitted on sides "
      f"{scale[n]['exponents']['fit_sizes']})" for n in names)
  return (f"One module, {scale['channels']} channels, batch {scale['batch']}, forward, "
          "graph mode; each size in a fresh process; added memory is the growth of the "
          f"process's peak resident memory while running (budget "
          f"{scale['memory_budget_bytes'] / _GB:.0f} GB).\n\n" +
          tables.markdown(header, rows) +
          f"\n\nGrowth exponents (least squares on log-log): {exponents}.")


def serving_table(result: dict) -> str:
  """One line per export, batch and network: p50, p99, images/s and the ratios."""
  names = result["networks"]
  baseline = names[result["baseline"]]
  body = [[serving.EXPORT_LABELS[r["export"]], r["batch"], names[r["network"]],
           _ms(r["p50"]), _ms(r["p99"]), _num(r["images_per_second"], 1),
           _num(r["ratio_to_baseline"]), _num(r["ratio_to_saved_model_float32"])]
          for r in result["rows"]]
  return tables.markdown(["export", "batch", "network", "p50 ms", "p99 ms",
                          "images/s", f"time / {baseline}",
                          "time / float32 SavedModel"], body)


def _bfloat16_instructions(result: dict) -> str:
  found = [flag for flag, present in result["cpu_bfloat16"].items() if present]
  return (f"has bfloat16 instructions ({', '.join(found)})" if found else
          f"has no bfloat16 instructions (none of {', '.join(result['cpu_bfloat16'])})")


def serving_recommendation(result: dict) -> str:
  """Which export serves fastest on the measured CPU, per batch size, with figures."""
  names = result["networks"]
  rows = result["rows"]
  lines = []
  for batch in sorted({r["batch"] for r in rows}):
    cells = []
    for network, name in names.items():
      options = [r for r in rows if r["batch"] == batch and r["network"] == network]
      best = min(options, key=lambda r: r["p50"])
      others = ", ".join(f"{serving.EXPORT_LABELS[r['export']]} {_ms(r['p50'])} ms"
                         for r in options if r is not best)
      cells.append(f"{name}: **{serving.EXPORT_LABELS[best['export']]}**, p50 "
                   f"{_ms(best['p50'])} ms, {_num(best['images_per_second'], 1)} "
                   f"images/s ({others})")
    lines.append(f"- Batch {batch}: " + "; ".join(cells) + ".")
  return (f"Fastest export by p50 latency on this CPU, which "
          f"{_bfloat16_instructions(result)}:\n\n" + "\n".join(lines))


def serving_section(result: dict) -> str:
  """The serving part: what was timed, the table and the recommendation."""
  return (f"Exported models ({result['experiment']} preprocessing inside the graph), "
          f"{result['num_classes']} classes, {result['input_size']}x"
          f"{result['input_size']} uint8 images, random weights. SavedModels through "
          "their `serving_default` signature, TFLite on the LiteRT interpreter "
          f"({result['tflite_delegate']}, {result['tflite_threads']} threads). All "
          f"configurations in the same {result['repeats']} interleaved rounds; p50 and "
          "p99 over every timed call, images/s = batch / p50; ratios are medians of "
          "per-round ratios, against the same export and batch of "
          f"{result['networks'][result['baseline']]} and against the same network's "
          "float32 SavedModel at the same batch.\n\n" + serving_table(result) +
          "\n\n" + serving_recommendation(result))


# -- Targets. --------------------------------------------------------------------------


def _module_target_rows(rows: List[dict]) -> List[List[str]]:
  result = []
  for shape in module_level.STAGE_SHAPES:
    cases = [r for r in rows if tuple(r["shape"]) == shape and
             r["pass"] == operators.FORWARD]
    if not cases:
      continue
    ratios = {(r["mode"], r["batch"]): r["ratios"][f"{operators.GSA}/{operators.CONV}"]
              for r in cases}
    measured = ", ".join(f"{mode} b{batch} {ratio:.2f}"
                         for (mode, batch), ratio in sorted(ratios.items()))
    result.append([f"GSA / Conv2D 3x3 forward time, {'x'.join(map(str, shape))}",
                   f"<= {MODULE_TARGET}", measured,
                   _yes(all(r <= MODULE_TARGET for r in ratios.values()))])
  # Reported: GSA against the local operators of Table 3 (a run may lack some).
  for other in (operators.LOCAL, operators.SAN_PAIRWISE, operators.SAN_PATCHWISE):
    pair = f"{operators.GSA}/{other}"
    for shape in module_level.STAGE_SHAPES:
      ratios = {(r["mode"], r["batch"]): r["ratios"][pair] for r in rows
                if tuple(r["shape"]) == shape and r["pass"] == operators.FORWARD and
                pair in r["ratios"]}
      if ratios:
        result.append([f"GSA / {operators.LABELS[other]} forward time, "
                       f"{'x'.join(map(str, shape))}", "reported",
                       ", ".join(f"{mode} b{batch} {ratio:.2f}"
                                 for (mode, batch), ratio in sorted(ratios.items())), "-"])
  return result


def paper_ratio(network: dict) -> Optional[float]:
  """GSA-ResNet / ResNet inference time in the paper (Table 6, TPUv3), if it has both."""
  return paper_runtime_ratio(network, f"{network_level.GSA}/{network_level.RESNET}")


def _network_target_rows(network: dict) -> List[List[str]]:
  result = []
  names = [c["name"] for c in network["costs"].values()]
  names_by_key = {key: c["name"] for key, c in network["costs"].items()}
  paper = paper_ratio(network)
  for row in network["rows"]:
    if row["batch"] != TARGET_BATCH:
      continue
    label = (f"{names[0]} / {names[1]} {row['step']} time, batch {row['batch']}, "
             f"{row['mode']}")
    if row["step"] == network_level.INFERENCE:
      met = row["ratio"] <= NETWORK_TARGET and (paper is None or row["ratio"] < paper)
      result.append([label, f"<= {NETWORK_TARGET}" + (
          f" and < {paper:.2f} (paper)" if paper else ""), f"{row['ratio']:.2f}",
                     _yes(met)])
    else:
      result.append([label, "reported", f"{row['ratio']:.2f}", "-"])
    for pair, ratio in row.get("ratios", {}).items():
      if pair not in _RATIOS:
        continue
      paper = paper_runtime_ratio(network, pair)
      result.append([f"{_ratio_label(pair, names_by_key)} {row['step']} time, batch "
                     f"{row['batch']}, {row['mode']}",
                     "reported" + (f" (paper, TPUv3: {paper:.2f})" if paper else ""),
                     f"{ratio:.2f}", "-"])
  return result


def _scale_target_rows(scale: dict) -> List[List[str]]:
  if scale["channels"] != SCALE_TARGET["channels"] or operators.GSA not in scale:
    return []
  gsa = scale[operators.GSA]
  result = []
  point = next((p for p in gsa["points"] if p["size"] == SCALE_TARGET["size"]), None)
  if point is not None:
    where = f"one GSA module at {point['size']}x{point['size']}x{scale['channels']}"
    if point["status"] != "ok":
      result.append([where, "runs", point["status"], _yes(False)])
    else:
      result.append([f"{where}: added memory", "< 1 GB",
                     f"{point['added_bytes'] / _GB:.2f} GB",
                     _yes(point["added_bytes"] < SCALE_TARGET["bytes"])])
      result.append([f"{where}: time", "< 150 ms", f"{point['seconds'] * 1e3:.0f} ms",
                     _yes(point["seconds"] < SCALE_TARGET["seconds"])])
  exponent = gsa["exponents"]["time"]
  if exponent is not None:
    result.append(["GSA time growth exponent in pixels", "<= 1.5", f"{exponent:.2f}",
                   _yes(exponent <= SCALE_TARGET["exponent"])])
  return result


def targets_section(results: dict) -> str:
  rows = []
  if "network_level" in results:
    rows += _network_target_rows(results["network_level"])
  if "module_level" in results:
    rows += _module_target_rows(results["module_level"])
  if "scale" in results:
    rows += _scale_target_rows(results["scale"])
  if not rows:
    return "No target applies to these settings (targets are for the full suite)."
  return tables.markdown(["target", "threshold", "measured", "met"], rows)


# -- Plots. ----------------------------------------------------------------------------


def plot_module_level(rows: List[dict], path: pathlib.Path) -> None:
  passes = [p for p in operators.PASSES if any(r["pass"] == p for r in rows)]
  shapes = list(dict.fromkeys(tuple(r["shape"]) for r in rows))
  series = list(dict.fromkeys((r["mode"], r["batch"]) for r in rows))
  figure, axes = plt.subplots(1, len(passes), figsize=(6 * len(passes), 4), squeeze=False)
  width = 0.8 / len(series)
  for axis, pass_ in zip(axes[0], passes):
    for index, (mode, batch) in enumerate(series):
      ratios = [next((r["ratios"][f"{operators.GSA}/{operators.CONV}"] for r in rows
                      if tuple(r["shape"]) == shape and r["pass"] == pass_ and
                      r["mode"] == mode and r["batch"] == batch), np.nan)
                for shape in shapes]
      axis.bar(np.arange(len(shapes)) + index * width, ratios, width,
               label=f"{mode}, batch {batch}")
    axis.axhline(MODULE_TARGET, color="black", linestyle="--", linewidth=1)
    axis.set_xticks(np.arange(len(shapes)) + width * (len(series) - 1) / 2)
    axis.set_xticklabels(["x".join(map(str, s)) for s in shapes])
    axis.set_ylabel("GSA time / Conv2D 3x3 time")
    axis.set_title(pass_)
    axis.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def plot_network_level(network: dict, path: pathlib.Path) -> None:
  rows = network["rows"]
  labels = [f"b{r['batch']} {r['mode']}\n{r['step']}" for r in rows]
  figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(rows)), 4))
  axis.bar(np.arange(len(rows)), [r["ratio"] for r in rows], color="tab:blue")
  axis.axhline(NETWORK_TARGET, color="black", linestyle="--", linewidth=1,
               label="target")
  paper = paper_ratio(network)
  if paper is not None:
    axis.axhline(paper, color="tab:red", linestyle=":", linewidth=1,
                 label=f"paper (TPUv3, inference, batch 1) {paper:.2f}")
  axis.set_xticks(np.arange(len(rows)))
  axis.set_xticklabels(labels, fontsize=8)
  names = [c["name"] for c in network["costs"].values()]
  axis.set_ylabel(f"{names[0]} time / {names[1]} time")
  axis.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def _reference_slope(axis, gsa: dict, exponent: float) -> None:
  """A dotted pixels^exponent line through the GSA module's first fitted point."""
  fitted = [p for p in gsa["points"]
            if p["status"] == "ok" and p["size"] in gsa["exponents"]["fit_sizes"]]
  if len(fitted) < 2:
    return
  pixels = np.array([fitted[0]["pixels"], fitted[-1]["pixels"]], dtype=float)
  axis.loglog(pixels, fitted[0]["seconds"] * (pixels / pixels[0])**exponent, ":",
              color="gray", label=f"~pixels^{exponent} (target bound)")


def plot_scale(scale: dict, path: pathlib.Path) -> None:
  names = [n for n in operators.OPERATORS if n in scale]
  figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  for axis, key, label in ((axes[0], "seconds", "forward time (s)"),
                           (axes[1], "added_bytes", "added peak memory (bytes)")):
    for name in names:
      ok = [p for p in scale[name]["points"] if p["status"] == "ok" and p.get(key, 0) > 0]
      exponent = scale[name]["exponents"]["time" if key == "seconds" else "memory"]
      legend = operators.LABELS[name] + (
          f" (~pixels^{exponent:.2f})" if exponent is not None else "")
      if ok:
        axis.loglog([p["pixels"] for p in ok], [p[key] for p in ok], "o-", label=legend)
      if key == "added_bytes":
        estimated = [p for p in scale[name]["points"]
                     if p["status"] != "ok" and p.get("estimated_bytes")]
        if estimated:
          axis.loglog([p["pixels"] for p in estimated],
                      [p["estimated_bytes"] for p in estimated], "x", color="tab:red",
                      label=f"{operators.LABELS[name]}: out of memory (estimate)")
    if key == "seconds":
      _reference_slope(axis, scale[operators.GSA], SCALE_TARGET["exponent"])
    sizes = [p["size"] for p in scale[names[0]]["points"]]
    axis.set_xticks([size * size for size in sizes])
    axis.set_xticklabels([f"{size}\u00b2" for size in sizes], fontsize=8)
    axis.minorticks_off()
    axis.set_xlabel("pixels (side\u00b2)")
    axis.set_ylabel(label)
    axis.grid(True, which="both", alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
      axis.legend(fontsize=8)
  axes[0].set_title(f"one module, {scale['channels']} channels, batch {scale['batch']}")
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def plot_serving(result: dict, path: pathlib.Path) -> None:
  rows = result["rows"]
  configs = list(dict.fromkeys((r["export"], r["batch"]) for r in rows))
  names = result["networks"]
  figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(configs)), 4))
  width = 0.8 / len(names)
  for index, (network, name) in enumerate(names.items()):
    throughput = [next((r["images_per_second"] for r in rows if r["network"] == network
                        and (r["export"], r["batch"]) == config), np.nan)
                  for config in configs]
    axis.bar(np.arange(len(configs)) + index * width, throughput, width, label=name)
  axis.set_xticks(np.arange(len(configs)) + width * (len(names) - 1) / 2)
  axis.set_xticklabels([f"{serving.EXPORT_LABELS[e]}\nbatch {b}" for e, b in configs],
                       fontsize=8)
  axis.set_ylabel("images/s (batch / p50 latency)")
  axis.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


# -- Writing. --------------------------------------------------------------------------

_PLOTS = {"module_level": plot_module_level, "network_level": plot_network_level,
          "scale": plot_scale, "serving": plot_serving}
_SECTIONS = (("network_level", "Network level", network_section),
             ("module_level", "Module level", module_section),
             ("scale", "Scale", scale_section),
             ("serving", "Serving", serving_section))


def write(results: dict, out_dir) -> List[pathlib.Path]:
  """Writes `results.md`, one PNG per measured part and the summary `README.md` into
  `out_dir`; returns them."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  written = []
  header = [_title(results, "GSA benchmarks")]
  if len(_runs(results, _RESULT_PARTS)) > 1:
    header.append(runs_line(results, _RESULT_PARTS))
  else:
    header += [machine_section(results["machine"]), f"Command: `{results['command']}`"]
  parts = header + ["## Targets", targets_section(results)]
  for key, title, section in _SECTIONS:
    if key in results:
      png = out_dir / f"{key}.png"
      _PLOTS[key](results[key], png)
      written.append(png)
      parts += [f"## {title}", section(results[key]), f"![{title}]({png.name})"]
  markdown = out_dir / REPORT_MD
  markdown.write_text("\n\n".join(parts) + "\n")
  summary_md = out_dir / SUMMARY_MD
  summary_md.write_text(summary(results))
  return [markdown, summary_md] + written


def _title(results: dict, title: str) -> str:
  return f"# {title}{' (quick run: tiny sizes)' if results.get('quick') else ''}"


def targets_summary(results: dict) -> str:
  """The targets' part of the summary: the command and machine of the parts they are
  made from, and the targets table."""
  return runs_line(results, _TARGET_PARTS) + "\n\n" + targets_section(results)


def serving_summary(results: dict) -> str:
  """The serving part of the summary: command, machine, table and recommendation."""
  result = results["serving"]
  return (runs_line(results, ["serving"]) + "\n\n" + serving_table(result) + "\n\n" +
          serving_recommendation(result))


def summary(results: dict) -> str:
  """The text of the summary `README.md`: what the directory holds, the targets and,
  if measured, the serving figures."""
  parts = [
      _title(results, "GSA benchmark results"), GENERATED_NOTE,
      f"The summary of the run in `{RESULTS_JSON}`. Every table is in "
      f"[{REPORT_MD}]({REPORT_MD}) and the plots are its PNG files; how the figures "
      "are measured and what they say is in the repository's `docs/benchmarks.md`. "
      "Repeat a part with the command on its line below; redraw these files with "
      "`python -m benchmarks.report RESULTS_DIR`.",
      "## Targets", targets_summary(results)]
  if "serving" in results:
    parts += ["## Serving", serving_summary(results)]
  return "\n\n".join(parts) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("results_dir", help=f"a directory holding {RESULTS_JSON}")
  args = parser.parse_args(argv)
  results = json.loads((pathlib.Path(args.results_dir) / RESULTS_JSON).read_text())
  for path in write(results, args.results_dir):
    print(path)


if __name__ == "__main__":
  main()
