"""The Fashion-MNIST study's report: results.json, results.md and Fig. 2-style plots.

`python -m studies.report OUT` draws them again from the per-run records in
`OUT/runs/*.json`; with `--readme README.md` it also rewrites the README's claims table
(between `README_BEGIN` and `README_END`) from them.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import statistics
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from benchmarks import report as benchmarks_report

README_BEGIN = ("<!-- Written by `python -m studies.report study_results/fashion_mnist "
                "--readme README.md` from its results.json: do not edit. -->")
README_END = "<!-- End of the written Fashion-MNIST claims. -->"
RESULTS_JSON = "results.json"
REPORT_MD = "results.md"
PLOTS = {  # file -> (x key, x label, x scale)
    "top1_vs_params.png": ("params", "trainable parameters (M)", 1e6),
    "top1_vs_flops.png": ("flops", "FLOPs per 32x32 image (M)", 1e6),
    "top1_vs_train_time.png": ("train_wall_seconds", "training wall time (min)", 60.0),
}
# The paper's claims as differences of two arms: (claim, arm a, arm b, paper's a - b).
CLAIMS = (
    ("Table 6: GSA beats convolution", "gsa", "conv",
     "+0.9 to +1.9 (ImageNet), +1.6 to +2.7 (CIFAR-100)"),
    ("Table 4: positional attention is essential", "gsa", "content", "+7.7"),
    ("Table 4: column beats row", "content_column", "content_row", "+0.8"),
    ("Table 2: GSA beats axial attention", "gsa", "axial", "+1.0"),
    ("Table 3: GSA beats local attention", "gsa", "local", "+0.9"),
    ("Table 5: group 1 attention slightly hurts", "groups234", "gsa", "+0.2"),
    ("Table 5: groups 2-4 vs 3-4", "groups234", "groups34", "+0.2"),
)


def machine(load_average: Optional[float] = None) -> dict:
  """What the study ran on."""
  cpu = platform.processor() or platform.machine()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
  except OSError:
    pass
  return {"cpu": cpu, "logical_cores": os.cpu_count(),
          "usable_cores": len(os.sched_getaffinity(0)),
          "platform": platform.platform(), "python": platform.python_version(),
          "date": datetime.datetime.now().isoformat(timespec="seconds"),
          "load_average_now": load_average}


def _mean_std(values: Sequence[float]) -> dict:
  values = [v for v in values if v is not None]
  if not values:
    return {"mean": None, "std": None, "n": 0}
  return {"mean": statistics.fmean(values),
          "std": statistics.stdev(values) if len(values) > 1 else None,
          "n": len(values)}


def summarize(records: List[dict],
              order: Sequence[str] = ()) -> Dict[str, dict]:
  """{arm: its label, table, costs and mean/std over seeds of each measurement}, arms
  in `order` (others after them, by name)."""
  rank = {name: i for i, name in enumerate(order)}
  arms = {}
  for record in sorted(records, key=lambda r: (rank.get(r["arm"], len(rank)),
                                               r["arm"], r["seed"])):
    arms.setdefault(record["arm"], []).append(record)
  summary = {}
  for name, runs in arms.items():
    first = runs[0]
    summary[name] = {
        "label": first["label"], "table": first["table"],
        "seeds": [r["seed"] for r in runs],
        "params": first["params"], "flops": first["flops"],
        **{key: _mean_std([r[key] for r in runs]) for key in (
            "top1", "top5", "train_wall_seconds", "images_per_second",
            "eval_wall_seconds")},
        "load_average": [r["load_average_start"] for r in runs] +
                        [r["load_average_end"] for r in runs],
    }
  return summary


def seed_std(summary: Dict[str, dict]) -> Optional[float]:
  """The seed-to-seed standard deviation of top-1, pooled over the arms that have
  more than one seed (None if none has): the noise of a single-seed arm."""
  stats = [arm["top1"] for arm in summary.values() if arm["top1"]["n"] > 1]
  if not stats:
    return None
  degrees = sum(s["n"] - 1 for s in stats)
  return (sum((s["n"] - 1) * s["std"] ** 2 for s in stats) / degrees) ** 0.5


def verdict(measured: float, standard_error: Optional[float]) -> str:
  """Whether a claim (the paper's difference is positive) holds here: the measured
  difference is more than two standard errors above zero (holds), below it (does not
  hold), or within them (within noise)."""
  if standard_error is None:
    return "unknown (one seed per arm)"
  if measured > 2 * standard_error:
    return "holds"
  if measured < -2 * standard_error:
    return "does not hold"
  return "within noise"


def claims(summary: Dict[str, dict]) -> List[dict]:
  """Each claim's measured difference of mean top-1 (percentage points), its standard
  error (an arm with one seed counts with the pooled seed std, `seed_std`) and the
  verdict (`verdict`)."""
  pooled = seed_std(summary)
  rows = []
  for claim, a, b, paper in CLAIMS:
    if a not in summary or b not in summary:
      continue
    variances = []
    for stat in (summary[a]["top1"], summary[b]["top1"]):
      std = stat["std"] if stat["std"] is not None else pooled
      variances.append(None if std is None else std ** 2 / stat["n"])
    standard_error = (None if None in variances
                      else 100 * sum(variances) ** 0.5)
    measured = 100 * (summary[a]["top1"]["mean"] - summary[b]["top1"]["mean"])
    rows.append({"claim": claim, "a": a, "b": b, "paper": paper,
                 "measured": measured, "standard_error": standard_error,
                 "verdict": verdict(measured, standard_error)})
  return rows


def collect(out: pathlib.Path, settings=None, machine_load=None) -> dict:
  """The study's results from the per-run records in `out/runs`."""
  from studies import fashion_mnist  # pylint: disable=g-import-not-at-top
  records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
  summary = summarize(records, [arm.name for arm in fashion_mnist.ARMS])
  results = {"machine": machine(machine_load), "runs": records, "arms": summary,
             "claims": claims(summary)}
  if settings is not None:
    results["settings"] = dataclasses.asdict(settings)
  return results


# -- Markdown. -------------------------------------------------------------------------


def _fmt(stat: dict, scale: float = 1.0, digits: int = 2) -> str:
  if stat["mean"] is None:
    return "-"
  text = f"{stat['mean'] * scale:.{digits}f}"
  if stat["std"] is not None:
    text += f" ± {stat['std'] * scale:.{digits}f}"
  return text


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


_NOISE_NOTE = (
    "Standard error of the difference from the seeds' spread; an arm with one seed "
    "counts with the seed-to-seed std pooled over the arms with several. A claim "
    "holds here when the difference is more than two standard errors above zero.")


def claims_table(rows: Sequence[dict], arms: Dict[str, dict]) -> str:
  """The claims as a Markdown table: the paper's difference, each arm's top-1 (mean ±
  std over its seeds), the measured difference ± its standard error, the verdict."""
  def top1(name):
    stat = arms[name]["top1"]
    return f"{_fmt(stat, 100)} ({stat['n']})"
  return table(
      ["Claim", "Arms a - b", "Paper (top-1 points)", "Top-1 of a (%, seeds)",
       "Top-1 of b (%, seeds)", "Measured a - b (± std. error)", "Verdict"],
      [[c["claim"], f"`{c['a']}` - `{c['b']}`", c["paper"], top1(c["a"]), top1(c["b"]),
        f"{c['measured']:+.2f}" + (f" ± {c['standard_error']:.2f}"
                                   if c["standard_error"] is not None else ""),
        c["verdict"]] for c in rows])


def readme_block(results: dict) -> str:
  """The README's claims table and the facts needed to repeat it."""
  settings, runs = results["settings"], results["runs"]
  loads = [x for r in runs for x in (r["load_average_start"], r["load_average_end"])]
  hours = sum(r["train_wall_seconds"] + r["eval_wall_seconds"] for r in runs) / 3600
  m = results["machine"]
  return "\n".join([
      claims_table(results["claims"], results["arms"]), "",
      f"{len(runs)} runs of {settings['steps']} steps of batch "
      f"{settings['batch_size']} ({settings['steps'] * settings['batch_size']:,} "
      f"images, {settings['steps'] * settings['batch_size'] / 55000:.2f} epochs), "
      f"each tested on the 10,000 test images; {hours:.1f} h of training and testing "
      f"in all on {m['cpu']} ({m['usable_cores']} cores), 1-minute load average "
      f"{min(loads):.1f}-{max(loads):.1f} during the runs. {_NOISE_NOTE}"])


def replace_readme_block(readme: str, results: dict) -> str:
  """`readme` with the text between its `README_BEGIN` and `README_END` lines replaced
  by `readme_block(results)`."""
  return benchmarks_report.replace_block(readme, README_BEGIN, README_END,
                                         readme_block(results))


def markdown(results: dict) -> str:
  """The report: one row per arm (mean ± std over seeds), the claims, every run."""
  m = results["machine"]
  settings = results.get("settings", {})
  lines = [
      "# GSA vs convolution on Fashion-MNIST", "",
      f"Machine: {m['cpu']}, {m['usable_cores']} usable cores of "
      f"{m['logical_cores']}; {m['platform']}; Python {m['python']}; written "
      f"{m['date']}.",
  ]
  if settings:
    lines.append(
        f"Every run: {settings['steps']} steps of batch {settings['batch_size']}, "
        f"then top-1 on the test split"
        + (" (quick smoke run: a few images, not a measurement)."
           if settings.get("max_examples") else " (10,000 images)."))
  lines += ["", "## Arms (mean ± std over seeds)", ""]
  rows = []
  for name, arm in results["arms"].items():
    load = [x for x in arm["load_average"] if x is not None]
    rows.append([
        f"{arm['label']} (`{name}`)", arm["table"], len(arm["seeds"]),
        _fmt(arm["top1"], 100), f"{arm['params'] / 1e6:.3f}",
        f"{arm['flops'] / 1e6:.1f}", _fmt(arm["train_wall_seconds"], 1 / 60, 1),
        _fmt(arm["images_per_second"], 1, 0),
        f"{min(load):.1f}-{max(load):.1f}" if load else "-"])
  lines.append(table(["Arm", "Paper", "Seeds", "Top-1 (%)", "Params (M)",
                      "FLOPs (M)", "Train time (min)", "Images/s", "Load avg"], rows))
  if results["claims"]:
    lines += ["", "## The paper's claims (top-1 differences, percentage points)", ""]
    lines.append(claims_table(results["claims"], results["arms"]))
    lines += ["", _NOISE_NOTE]
  lines += ["", "## Every run", ""]
  rows = [[r["arm"], r["seed"], f"{100 * r['top1']:.2f}",
           f"{r['train_wall_seconds'] / 60:.1f}",
           "-" if r["images_per_second"] is None else f"{r['images_per_second']:.0f}",
           f"{r['eval_wall_seconds']:.0f}",
           f"{r['load_average_start']} / {r['load_average_end']}",
           ", ".join(str(s) for s in r["resumed_from_steps"]) or "-"]
          for r in results["runs"]]
  lines.append(table(["Arm", "Seed", "Top-1 (%)", "Train (min)", "Images/s",
                      "Eval (s)", "Load start / end", "Resumed from step"], rows))
  lines += ["", "Plots: " + ", ".join(f"`{name}`" for name in PLOTS), ""]
  return "\n".join(lines)


# -- Plots. ----------------------------------------------------------------------------


def plot(results: dict, path: pathlib.Path, x_key: str, x_label: str,
         x_scale: float) -> None:
  """Top-1 against `x_key`, one point per arm with error bars over seeds (Fig. 2)."""
  figure, axis = plt.subplots(figsize=(6.5, 4.5))
  for name, arm in results["arms"].items():
    top1 = arm["top1"]
    if top1["mean"] is None:
      continue
    x = arm[x_key]
    x_mean, x_err = (x["mean"], x["std"]) if isinstance(x, dict) else (x, None)
    conv = name == "conv"
    axis.errorbar(x_mean / x_scale, 100 * top1["mean"],
                  yerr=None if top1["std"] is None else 100 * top1["std"],
                  xerr=None if x_err is None else x_err / x_scale,
                  fmt="s" if conv else "o", color="tab:blue" if conv else "tab:red",
                  capsize=3, markersize=6)
    axis.annotate(name, (x_mean / x_scale, 100 * top1["mean"]),
                  textcoords="offset points", xytext=(5, 4), fontsize=7)
  axis.set_xlabel(x_label)
  axis.set_ylabel("test top-1 (%)")
  axis.set_title(f"Fashion-MNIST: top-1 vs {x_label.split(' (')[0]}")
  axis.margins(x=0.2, y=0.15)
  axis.grid(alpha=0.3)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write(results: dict, out: pathlib.Path) -> List[pathlib.Path]:
  """Writes results.json, results.md and the plots into `out`; returns their paths."""
  paths = [out / RESULTS_JSON, out / REPORT_MD]
  partial = out / (RESULTS_JSON + ".partial")
  partial.write_text(json.dumps(results, indent=1) + "\n")
  partial.replace(paths[0])
  paths[1].write_text(markdown(results))
  if results["arms"]:
    for name, (x_key, x_label, x_scale) in PLOTS.items():
      plot(results, out / name, x_key, x_label, x_scale)
      paths.append(out / name)
  return paths


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m studies.report",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("out", help="the study's --out directory")
  parser.add_argument("--readme", default=None,
                      help="also rewrite this README's claims table")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out)
  if not (out / "runs").is_dir():
    parser.error(f"{out}: no runs/ directory (not a study's --out)")
  previous = out / RESULTS_JSON
  results = collect(out)
  if previous.exists():
    old = json.loads(previous.read_text())
    results["settings"] = old.get("settings", {})
    results["machine"] = old.get("machine", results["machine"])
  for path in write(results, out):
    print(path)
  if args.readme:
    readme = pathlib.Path(args.readme)
    readme.write_text(replace_readme_block(readme.read_text(), results))
    print(readme)


if __name__ == "__main__":
  main()
