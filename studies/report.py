"""The Fashion-MNIST study's report: results.json, results.md and the plots.

The plots are the learning curves and Fig. 2-style top-1 against cost.
`python -m studies.report OUT` draws them again from the per-run records in
`OUT/runs/*.json`. results.md is the generated page the docs link to; with
`--convergence OUT_2X` it also compares the arms with a study of the same arms at
twice the schedule.
"""

import argparse
import dataclasses
import json
import pathlib
import statistics
from typing import Dict, List, Optional, Sequence

import matplotlib

from reports import machine as machine_description
from reports import tables

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS_JSON = "results.json"
REPORT_MD = "results.md"
PLOTS = {  # file -> (x key, x label, x scale)
    "top1_vs_params.png": ("params", "trainable parameters (M)", 1e6),
    "top1_vs_flops.png": ("flops", "FLOPs per 32x32 image (M)", 1e6),
    "top1_vs_train_time.png": ("train_wall_seconds", "training wall time (min)", 60.0),
}
CURVES_PNG = "learning_curves.png"
BATCHES_PNG = "batches.png"  # Drawn by `studies.fashion_mnist` (`studies.evaluation`).
# Per-run measurements summarised over seeds (mean ± std).
MEASURES = ("top1", "top5", "validation_top1", "validation_loss", "test_loss",
            "max_abs_logit", "share_above_100", "train_wall_seconds",
            "images_per_second", "eval_wall_seconds")
# The paper's claims as differences of two arms: (claim, arm a, arm b, paper's a - b).
CLAIMS = (
    ("Table 6: GSA beats convolution", "gsa", "conv",
     "+0.9 to +1.9 (ImageNet), +1.6 to +2.7 (CIFAR-100)"),
    ("Table 4: positional attention is essential", "gsa", "content", "+7.7"),
    ("Table 4: column beats row", "content_column", "content_row", "+0.8"),
    ("Table 2: GSA beats axial attention", "gsa", "axial", "+1.0"),
    ("Table 3: GSA beats local attention", "gsa", "local", "+0.9"),
    ("Table 3: GSA beats SAN (patchwise)", "gsa", "san_patchwise", "+0.3"),
    ("Table 5: group 1 attention slightly hurts", "groups234", "gsa", "+0.2"),
    ("Table 5: groups 2-4 vs 3-4", "groups234", "groups34", "+0.2"),
)


def machine(load_average: Optional[float] = None) -> dict:
  """What the study ran on (`reports.machine.describe`)."""
  return machine_description.describe(load_average)


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
        **{key: _mean_std([r.get(key) for r in runs]) for key in MEASURES},
        "epochs": first.get("epochs"),
        "curves": [r.get("curve", []) for r in runs],
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


def collect(out: pathlib.Path, settings=None, machine_load=None,
            order: Sequence[str] = ()) -> dict:
  """The study's results from the per-run records in `out/runs`, arms in `order`
  (else in the order an earlier results.json recorded, else by name)."""
  previous = out / RESULTS_JSON
  if not order and previous.exists():
    order = json.loads(previous.read_text()).get("arm_order", ())
  records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
  summary = summarize(records, order)
  results = {"machine": machine(machine_load), "runs": records, "arms": summary,
             "claims": claims(summary), "arm_order": list(order)}
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

  def pair(key, digits):
    return " / ".join(_g(arms[name][key]["mean"], digits) for name in (c["a"], c["b"]))

  body = []
  for c in rows:
    body.append([
        c["claim"], f"`{c['a']}` - `{c['b']}`", c["paper"], top1(c["a"]),
        top1(c["b"]),
        f"{c['measured']:+.2f}" + (f" ± {c['standard_error']:.2f}"
                                   if c["standard_error"] is not None else ""),
        c["verdict"], pair("validation_loss", 3), pair("max_abs_logit", 3)])
  return tables.markdown(
      ["Claim", "Arms a - b", "Paper (top-1 points)", "Top-1 of a (%, seeds)",
       "Top-1 of b (%, seeds)", "Measured a - b (± std. error)", "Verdict",
       "Validation loss a / b", "Largest test \\|logit\\| a / b"], body)


def _g(value, digits: int = 3) -> str:
  return "-" if value is None else f"{value:.{digits}g}"


def _minutes_per_epoch(images_per_second: Optional[float],
                       train_images: int = 55_000) -> str:
  return "-" if not images_per_second else f"{train_images / images_per_second / 60:.1f}"


def arms_table(arms: Dict[str, dict]) -> str:
  """One row per arm: test top-1, the last validation's top-1 and loss, the largest
  test |logit|, parameters, FLOPs and the cost of an epoch on this machine."""
  rows = []
  for name, arm in arms.items():
    load = [x for x in arm["load_average"] if x is not None]
    rows.append([
        f"{arm['label']} (`{name}`)", arm["table"], len(arm["seeds"]),
        _fmt(arm["top1"], 100), _fmt(arm["validation_top1"], 100),
        _fmt(arm["validation_loss"], 1, 3), _g(arm["max_abs_logit"]["mean"]),
        f"{arm['params'] / 1e6:.3f}", f"{arm['flops'] / 1e6:.1f}",
        _fmt(arm["images_per_second"], 1, 0),
        _minutes_per_epoch(arm["images_per_second"]["mean"]),
        f"{min(load):.1f}-{max(load):.1f}" if load else "-"])
  return tables.markdown(
      ["Arm", "Paper", "Seeds", "Test top-1 (%)", "Validation top-1 (%)",
       "Validation loss", "Largest test \\|logit\\|", "Params (M)", "FLOPs (M)",
       "Images/s", "Min/epoch", "Load avg"], rows)


def convergence_table(results: dict, longer: dict) -> str:
  """Test top-1 of each arm at the study's schedule and at the longer one."""
  rows = []
  for name, arm in longer["arms"].items():
    if name not in results["arms"]:
      continue
    base, more = results["arms"][name], arm
    rows.append([f"`{name}`", f"{base['epochs']:g}", _fmt(base["top1"], 100),
                 f"{more['epochs']:g}", _fmt(more["top1"], 100),
                 f"{100 * (more['top1']['mean'] - base['top1']['mean']):+.2f}"])
  return tables.markdown(["Arm", "Epochs", "Test top-1 (%)", "Epochs (longer)",
                          "Test top-1 (%)", "Change (points)"], rows)


def markdown(results: dict) -> str:
  """The report: one row per arm (mean ± std over seeds), the claims, every run."""
  m = results["machine"]
  settings = results.get("settings", {})
  lines = [
      "# The paper's claims on Fashion-MNIST", "",
      "Written by `python -m studies.report` from the runs of `python -m "
      "studies.fashion_mnist`: do not edit.", "",
      f"Machine: {m['cpu']}, {m['usable_cores']} usable cores of "
      f"{m['logical_cores']}; {m['platform']}; Python {m['python']}; written "
      f"{m['date']}.",
  ]
  if settings:
    epochs = settings["steps"] * settings["batch_size"] / 55_000
    lines.append(
        f"Every run: {settings['steps']} steps of batch {settings['batch_size']} "
        f"({epochs:.1f} epochs), validated {settings.get('evaluations', 1)} times on "
        f"the {settings.get('validation_size', 5000):,}-image validation split, then "
        "tested once on the test split"
        + (" (quick smoke run: a few images, not a measurement)."
           if settings.get("max_examples") else " (10,000 images)."))
  lines += ["", f"What the networks see: [`{BATCHES_PNG}`]({BATCHES_PNG}); learning "
            f"curves: [`{CURVES_PNG}`]({CURVES_PNG}).", "",
            "## Arms (mean ± std over seeds)", "", arms_table(results["arms"])]
  if results["claims"]:
    lines += ["", "## The paper's claims (top-1 differences, percentage points)", ""]
    lines.append(claims_table(results["claims"], results["arms"]))
    lines += ["", _NOISE_NOTE]
  if results.get("convergence"):
    lines += ["", "## Convergence: the same arms at twice the schedule", "",
              convergence_table(results, results["convergence"])]
  lines += ["", "## Every run", ""]
  rows = [[r["arm"], r["seed"], f"{100 * r['top1']:.2f}",
           _g(r.get("validation_top1") and 100 * r["validation_top1"], 4),
           _g(r.get("validation_loss")), _g(r.get("max_abs_logit")),
           f"{r['train_wall_seconds'] / 60:.1f}",
           "-" if r["images_per_second"] is None else f"{r['images_per_second']:.0f}",
           f"{r['eval_wall_seconds']:.0f}",
           f"{r['load_average_start']} / {r['load_average_end']}",
           ", ".join(str(s) for s in r["resumed_from_steps"]) or "-"]
          for r in results["runs"]]
  lines.append(tables.markdown(
      ["Arm", "Seed", "Test top-1 (%)", "Validation top-1 (%)", "Validation loss",
       "Largest \\|logit\\|", "Train (min)", "Images/s", "Eval (s)",
       "Load start / end", "Resumed from step"], rows))
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


def plot_curves(results: dict, path: pathlib.Path) -> None:
  """Validation top-1 against epochs for every arm: the mean over its seeds, with the
  seeds' range as a band (two panels: the Table 6 arms, then every arm)."""
  figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
  colours = plt.get_cmap("tab10")
  for panel, names in zip(axes, (["conv", "gsa"], list(results["arms"]))):
    for index, name in enumerate(results["arms"]):
      if name not in names:
        continue
      curves = [c for c in results["arms"][name]["curves"] if c]
      if not curves:
        continue
      steps = sorted(set.intersection(*(
          {point["step"] for point in c if "top1" in point} for c in curves)))
      if not steps:
        continue
      by_step = [[next(p["top1"] for p in c if p["step"] == step) for c in curves]
                 for step in steps]
      epochs = [next(p["epoch"] for p in curves[0] if p["step"] == step)
                for step in steps]
      mean = [100 * statistics.fmean(values) for values in by_step]
      colour = colours(index % 10)
      panel.plot(epochs, mean, marker="o", markersize=3, color=colour,
                 label=f"{name} ({len(curves)})")
      if len(curves) > 1:
        panel.fill_between(epochs, [100 * min(v) for v in by_step],
                           [100 * max(v) for v in by_step], color=colour, alpha=0.2)
    panel.set_xlabel("epoch")
    panel.grid(alpha=0.3)
    panel.legend(fontsize=7, title="arm (seeds)", title_fontsize=7)
  axes[0].set_ylabel("validation top-1 (%)")
  axes[0].set_title("Table 6 arms (band: range over seeds)", fontsize=9)
  axes[1].set_title("every arm", fontsize=9)
  low = [min(100 * p["top1"] for c in arm["curves"] for p in c if "top1" in p)
         for arm in results["arms"].values() if any(arm["curves"])]
  if low:
    axes[0].set_ylim(max(0, min(low) - 2), 100)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
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
    plot_curves(results, out / CURVES_PNG)
    paths.append(out / CURVES_PNG)
  return paths


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m studies.report",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("out", help="the study's --out directory")
  parser.add_argument("--convergence", default=None,
                      help="the --out directory of the same arms at twice the "
                           "schedule: adds the convergence table")
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
  if args.convergence:
    longer = pathlib.Path(args.convergence)
    if not (longer / "runs").is_dir():
      parser.error(f"--convergence: {longer}: no runs/ directory")
    results["convergence"] = collect(longer)
  for path in write(results, out):
    print(path)


if __name__ == "__main__":
  main()
