"""The paper's claims on Fashion-MNIST: every arm trained the same way, then tested.

  python -m studies.fashion_mnist --out study_results/fashion_mnist       # the study
  python -m studies.fashion_mnist --quick --out /tmp/fm_quick             # smoke run
  python -m studies.fashion_mnist --arms conv,gsa --seeds 5 --out DIR     # some arms

Each arm is a YAML file of `official_configs/fashion_mnist/` on the experiment
`gsa_resnet_fashion_mnist` (same recipe and step count for all; only the backbone
differs). Each run (arm x seed) trains in its own process, `python -m gsa_keras.train
--mode=train_and_eval`, with the seed as `task.train_data.seed` (the data order; the
Model Garden driver does not seed weight initialisation, so it differs between runs
too). It evaluates on the 5,000-image validation split `--evaluations` times during
training (the learning curve), then once on the 10,000 test images
(`studies.evaluation`, its own process).

For each run it records top-1 (and top-5), loss and the largest |logit| per image on
the test split, the validation curve (top-1 and loss against epochs), trainable
parameters and FLOPs (`gsa_keras.flops`, the paper's count, one 32x32 image),
training wall time (process start to end minus the evaluations, so start-up and graph
building are included), evaluation time, training images/s (the trainer's own steps/s,
first loop of each process left out), and the 1-minute load average at the start and
end of training. The study also draws its first training and evaluation batch
(`batches.png`).

Resume: each run's result is written to `runs/<arm>-seed<k>.json` as soon as it is
evaluated, and `results.json`, `results.md` and the plots are rewritten after every
run. A rerun with the same `--out` skips finished runs and continues an interrupted
one from the latest checkpoint in its model directory (the Model Garden trainer
restores it), so the study can span several sittings. `--pause_at_step N` stops every
training at step N (checkpointed) to be continued by a later rerun.

Data: the TFRecords of `gsa_keras.data.fashion_mnist` in `--data_dir`, converted
from the IDX files in `--source` if missing (Debian: `apt-get install
dataset-fashion-mnist`). `--quick` converts the first few images instead, into
`<out>/quick_data`, and trains every arm for a few steps.
"""

import argparse
import dataclasses
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from studies import report

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "official_configs" / "fashion_mnist"
EXPERIMENT = "gsa_resnet_fashion_mnist"
RUNS_DIR = "runs"
MODEL_DIRS = "model_dirs"
_PROG = "studies.fashion_mnist"
# Orbit's log line at the end of an evaluation.
_EVAL_TIME = re.compile(r"^ *eval \| step: +\d+ \|.*eval time: +([0-9.]+) sec", re.M)


@dataclasses.dataclass(frozen=True)
class Arm:
  """One network of the study: its YAML, the paper's table and a short label."""
  name: str
  yaml: str
  table: str
  label: str

  @property
  def config_file(self) -> pathlib.Path:
    return CONFIG_DIR / self.yaml


ARMS = (
    Arm("conv", "resnet26.yaml", "Table 6", "ResNet-26 (convolution)"),
    Arm("gsa", "gsa_resnet26.yaml", "Table 6", "GSA-ResNet-26"),
    Arm("positional", "table4_positional.yaml", "Table 4", "positional only"),
    Arm("content", "table4_content.yaml", "Table 4", "content only"),
    Arm("content_column", "table4_content_column.yaml", "Table 4", "content + column"),
    Arm("content_row", "table4_content_row.yaml", "Table 4", "content + row"),
    Arm("axial", "table2_axial.yaml", "Table 2", "axial content + positional"),
    Arm("local", "table3_local.yaml", "Table 3", "7x7 local self-attention"),
    Arm("san_patchwise", "san_patchwise.yaml", "Table 3", "SAN patchwise self-attention"),
    Arm("san_pairwise", "san_pairwise.yaml", "Table 3", "SAN pairwise self-attention"),
    Arm("groups234", "table5_groups234.yaml", "Table 5", "GSA in groups 2-4"),
    Arm("groups34", "table5_groups34.yaml", "Table 5", "GSA in groups 3-4"),
    # Not paper rows: the options against large logits in evaluation mode.
    Arm("gsa_query_l2", "gsa_query_l2.yaml", "option", "GSA, queries L2-normalised"),
    Arm("gsa_query_softmax", "gsa_query_softmax.yaml", "option",
        "GSA, queries softmax-normalised"),
)
ARMS_BY_NAME = {arm.name: arm for arm in ARMS}
TABLE6_ARMS = ("conv", "gsa")  # These get `--seeds` seeds, the others `--ablation_seeds`.


@dataclasses.dataclass(frozen=True)
class Settings:
  """How every run is trained and evaluated."""
  steps: int
  batch_size: int
  eval_batch_size: int
  steps_per_loop: int
  warmup_steps: int
  evaluations: int = 10  # On the validation split, evenly spaced.
  max_examples: Optional[int] = None  # Per IDX set, for --quick.
  validation_size: int = 5000
  # Train and evaluate step by step, without tracing `tf.function`s: for a few
  # steps, tracing a GSA-ResNet costs far more than it saves.
  eager: bool = False

  @property
  def validation_interval(self) -> int:
    """Steps between validations: a multiple of `steps_per_loop` that gives at least
    `evaluations` of them."""
    loops = max(1, self.steps // self.evaluations // self.steps_per_loop)
    return loops * self.steps_per_loop


def default_settings(quick: bool, steps: Optional[int],
                     evaluations: Optional[int] = None) -> Settings:
  """The experiment's recipe, or a few steps on a few images for `--quick`; with
  `evaluations` validations per run (default: the recipe's)."""
  from gsa_keras.configs import fashion_mnist as fm_config
  if quick:
    steps = steps or 4
    return Settings(steps=steps, batch_size=8, eval_batch_size=32,
                    steps_per_loop=1, warmup_steps=1, evaluations=evaluations or 2,
                    max_examples=96, validation_size=32, eager=True)
  steps = steps or fm_config.TRAIN_STEPS
  evaluations = evaluations or fm_config.EVALUATIONS
  return Settings(steps=steps, batch_size=fm_config.BATCH_SIZE,
                  eval_batch_size=fm_config.EVAL_BATCH_SIZE,
                  steps_per_loop=max(1, min(fm_config.STEPS_PER_LOOP,
                                            steps // evaluations)),
                  warmup_steps=max(1, min(fm_config.WARMUP_STEPS, steps // 4)),
                  evaluations=evaluations)


def _log(message: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load() -> float:
  return round(os.getloadavg()[0], 2)


def _write_json(path: pathlib.Path, data) -> None:
  """Writes `data` to `path` atomically (a temporary file, then a rename)."""
  partial = path.with_name(path.name + ".partial")
  partial.write_text(json.dumps(data, indent=1) + "\n")
  partial.replace(path)


# -- Data. -----------------------------------------------------------------------------


def prepare_data(source: str, data_dir: str, settings: Settings) -> Dict[str, int]:
  """Converts the IDX files if a split is missing; returns {split: image count}."""
  from gsa_keras.data import fashion_mnist
  paths = {s: fashion_mnist.file_path(data_dir, s) for s in fashion_mnist.SPLITS}
  if not all(os.path.exists(p) for p in paths.values()):
    _log(f"converting {source} -> {data_dir}")
    return fashion_mnist.write_tfrecords(source, data_dir, settings.validation_size,
                                         settings.max_examples)
  return {s: fashion_mnist.count_examples(p) for s, p in paths.items()}


# -- One run: train (possibly resumed), then evaluate. -------------------------------


def checkpoint_step(model_dir: pathlib.Path) -> int:
  """The global step of the latest checkpoint in `model_dir` (0 if none)."""
  import tensorflow as tf
  latest = tf.train.latest_checkpoint(str(model_dir)) if model_dir.is_dir() else None
  if not latest:
    return 0
  return int(tf.train.load_variable(latest, "global_step/.ATTRIBUTES/VARIABLE_VALUE"))


def scalars(event_dir: pathlib.Path, tag: str) -> List[tuple]:
  """[(wall_time, step, value)] of a scalar summary `tag` under `event_dir`."""
  import tensorflow as tf
  values = []
  for path in sorted(event_dir.glob("events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        if value.tag == tag:
          values.append((event.wall_time, event.step,
                         float(tf.make_ndarray(value.tensor))))
  return values


def _overrides(settings: Settings, data_dir: str, seed: int, train_steps: int,
               validation_count: int) -> str:
  from gsa_keras.data import fashion_mnist
  eval_batch = min(settings.eval_batch_size, validation_count)
  values = {
      "task.train_data.input_path": fashion_mnist.file_path(data_dir, "train"),
      "task.train_data.global_batch_size": settings.batch_size,
      "task.train_data.seed": seed,
      "task.validation_data.input_path": fashion_mnist.file_path(data_dir,
                                                                 "validation"),
      "task.validation_data.global_batch_size": eval_batch,
      "task.validation_data.drop_remainder": False,
      "trainer.validation_steps": math.ceil(validation_count / eval_batch),
      "trainer.train_steps": train_steps,
      "trainer.steps_per_loop": settings.steps_per_loop,
      "trainer.summary_interval": settings.steps_per_loop,
      "trainer.checkpoint_interval": settings.validation_interval,
      "trainer.validation_interval": settings.validation_interval,
      # The schedule always spans the full run, also when paused before its end.
      "trainer.optimizer_config.learning_rate.cosine.decay_steps": settings.steps,
      "trainer.optimizer_config.warmup.linear.warmup_steps": settings.warmup_steps,
  }
  if settings.eager:
    values.update({"trainer.train_tf_function": False,
                   "trainer.train_tf_while_loop": False,
                   "trainer.eval_tf_function": False})
  return ",".join(f"{key}={value}" for key, value in values.items())


def _train_command(arm: Arm, model_dir: pathlib.Path, mode: str,
                   overrides: str) -> List[str]:
  return [sys.executable, "-m", "gsa_keras.train", f"--experiment={EXPERIMENT}",
          f"--config_file={arm.config_file}", f"--mode={mode}",
          f"--model_dir={model_dir}", f"--params_override={overrides}"]


def _run_process(command: Sequence[str], log_path: pathlib.Path) -> tuple:
  """Runs `command` in the repo root with its output appended to `log_path`; returns
  (its wall time, its output); raises RuntimeError naming the log if it fails."""
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env["PYTHONPATH"] = os.pathsep.join(
      [str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
  start = time.time()
  with open(log_path, "a", encoding="utf-8") as log:
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    offset = log.tell()
    result = subprocess.run(command, cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, check=False)
  seconds = time.time() - start
  if result.returncode:
    raise RuntimeError(f"{' '.join(command[:5])} ... exited with {result.returncode}; "
                       f"see {log_path}")
  with open(log_path, encoding="utf-8", errors="replace") as log:
    log.seek(offset)
    return seconds, log.read()


def _images_per_second(model_dir: pathlib.Path, start_step: int,
                       batch_size: int) -> Optional[float]:
  """The trainer's own throughput since `start_step`, leaving out the first loop of
  each process (it includes tracing) unless there is nothing else."""
  rates = [(step, value) for _, step, value in
           scalars(model_dir / "train", "steps_per_second") if step > start_step]
  if not rates:
    return None
  steady = [value for step, value in rates if step != min(rates)[0]] or [rates[0][1]]
  steady.sort()
  return batch_size * steady[len(steady) // 2]


def _weighted_rate(segments: List[dict]) -> Optional[float]:
  """Images/s over all training segments, each weighted by its steps."""
  if not segments or any(s["images_per_second"] is None for s in segments):
    return None
  steps = [s["end_step"] - s["start_step"] for s in segments]
  return sum(s["images_per_second"] * n for s, n in zip(segments, steps)) / sum(steps)


def learning_curve(model_dir: pathlib.Path, steps_per_epoch: float) -> List[dict]:
  """The validation evaluations of a run: [{step, epoch, top1, loss}] by step (the
  last of each step if a resumed run evaluated it twice)."""
  by_step = {}
  for tag, key in (("accuracy", "top1"), ("validation_loss", "loss")):
    for _, step, value in scalars(model_dir / "validation", tag):
      by_step.setdefault(step, {"step": step,
                                "epoch": round(step / steps_per_epoch, 3)})[key] = value
  return [by_step[step] for step in sorted(by_step)]


def _test(model_dir: pathlib.Path, data_dir: str, eval_batch_size: int) -> tuple:
  """Evaluates the run's last checkpoint on the test split in its own process
  (`studies.evaluation`); returns (its record, wall seconds)."""
  from gsa_keras.data import fashion_mnist
  path = model_dir / "test.json"
  command = [sys.executable, "-m", "studies.evaluation", f"--model_dir={model_dir}",
             f"--data={fashion_mnist.file_path(data_dir, 'test')}", f"--out={path}",
             f"--batch_size={eval_batch_size}"]
  seconds, _ = _run_process(command, model_dir / "test.log")
  return json.loads(path.read_text()), seconds


def run_one(arm: Arm, seed: int, out: pathlib.Path, settings: Settings, data_dir: str,
            counts: Dict[str, int], pause_at_step: Optional[int],
            costs: Callable[[Arm], dict]) -> dict:
  """Trains (or resumes) and tests one run; returns its record.

  The record's `status` is 'finished' (just now), 'skipped' (finished before),
  'paused' (stopped at `pause_at_step`, to be continued) or 'failed'. `costs(arm)`
  gives the arm's parameters and FLOPs.
  """
  name = f"{arm.name}-seed{seed}"
  result_path = out / RUNS_DIR / f"{name}.json"
  if result_path.exists():
    record = json.loads(result_path.read_text())
    if record["steps"] != settings.steps or record["quick"] != (
        settings.max_examples is not None):
      raise ValueError(
          f"{result_path} was trained for {record['steps']} steps (quick: "
          f"{record['quick']}), not --steps={settings.steps}: use another --out.")
    _log(f"{name}: finished before, skipped (top-1 {record['top1']:.4f})")
    return dict(record, status="skipped")

  model_dir = out / MODEL_DIRS / name
  model_dir.mkdir(parents=True, exist_ok=True)
  segments_path = model_dir / "segments.json"
  segments = json.loads(segments_path.read_text()) if segments_path.exists() else []
  target = settings.steps if pause_at_step is None else min(settings.steps,
                                                            pause_at_step)
  start_step = checkpoint_step(model_dir)
  if start_step > settings.steps:
    raise ValueError(f"{model_dir} holds a checkpoint at step {start_step}, beyond "
                     f"--steps={settings.steps}: use another --out.")
  if start_step < target:
    _log(f"{name}: training steps {start_step} -> {target}"
         + (f" (resumed from the checkpoint at step {start_step})" if start_step
            else ""))
    load_start = _load()
    overrides = _overrides(settings, data_dir, seed, target, counts["validation"])
    try:
      seconds, output = _run_process(
          _train_command(arm, model_dir, "train_and_eval", overrides),
          model_dir / "train_and_eval.log")
    except RuntimeError as e:
      _log(f"{name}: FAILED: {e}")
      return {"arm": arm.name, "seed": seed, "status": "failed", "error": str(e)}
    validation_seconds = sum(float(t) for t in _EVAL_TIME.findall(output))
    end_step = checkpoint_step(model_dir)
    segments.append({
        "start_step": start_step, "end_step": end_step,
        "wall_seconds": seconds - validation_seconds,
        "validation_seconds": validation_seconds,
        "images_per_second": _images_per_second(model_dir, start_step,
                                                settings.batch_size),
        "load_average_start": load_start, "load_average_end": _load()})
    _write_json(segments_path, segments)
    _log(f"{name}: trained to step {end_step} in {seconds - validation_seconds:.0f} s")
  if checkpoint_step(model_dir) < settings.steps:
    _log(f"{name}: paused at step {checkpoint_step(model_dir)}")
    return {"arm": arm.name, "seed": seed, "status": "paused",
            "step": checkpoint_step(model_dir), "segments": segments}

  try:
    test, test_seconds = _test(model_dir, data_dir, settings.eval_batch_size)
  except RuntimeError as e:
    _log(f"{name}: FAILED: {e}")
    return {"arm": arm.name, "seed": seed, "status": "failed", "error": str(e)}
  steps_per_epoch = counts["train"] / settings.batch_size
  curve = learning_curve(model_dir, steps_per_epoch)
  if not curve or curve[-1]["step"] != settings.steps:
    error = (f"no validation at step {settings.steps}: see "
             f"{model_dir}/train_and_eval.log")
    _log(f"{name}: FAILED: {error}")
    return {"arm": arm.name, "seed": seed, "status": "failed", "error": error}
  record = {
      "arm": arm.name, "seed": seed, "table": arm.table, "label": arm.label,
      "config_file": str(arm.config_file.relative_to(REPO)),
      "quick": settings.max_examples is not None, "steps": settings.steps,
      "epochs": round(settings.steps / steps_per_epoch, 3),
      "batch_size": settings.batch_size, "test_images": test["images"],
      "top1": test["top1"], "top5": test["top5"], "test_loss": test["loss"],
      "max_abs_logit": test["max_abs_logit"]["max"],
      "share_above_100": test["share_above_100"], "test": test,
      "validation_top1": curve[-1].get("top1"),
      "validation_loss": curve[-1].get("loss"), "curve": curve,
      **costs(arm),
      "train_wall_seconds": sum(s["wall_seconds"] for s in segments),
      "images_per_second": _weighted_rate(segments),
      "eval_wall_seconds": test_seconds + sum(s.get("validation_seconds", 0)
                                              for s in segments),
      "load_average_start": segments[0]["load_average_start"] if segments else None,
      "load_average_end": segments[-1]["load_average_end"] if segments else None,
      "resumed_from_steps": [s["start_step"] for s in segments if s["start_step"]],
      "segments": segments,
  }
  (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
  _write_json(result_path, record)
  _log(f"{name}: test top-1 {record['top1']:.4f}, validation top-1 "
       f"{record['validation_top1']:.4f}, largest |logit| {record['max_abs_logit']:.3g}")
  return dict(record, status="finished")


# -- Parameters and FLOPs. -------------------------------------------------------------


def arm_costs(arm: Arm) -> dict:
  """Trainable parameters and FLOPs (the paper's count) of the arm's classifier, for
  one image of the experiment's input size."""
  from official.core import exp_factory
  from official.modeling import hyperparams
  from gsa_keras import flops
  from gsa_keras import registry_imports
  params = exp_factory.get_exp_config(EXPERIMENT)
  params = hyperparams.override_params_dict(params, str(arm.config_file),
                                            is_strict=True)
  model = params.task.model
  cost = flops.count_params_and_flops(model.backbone, input_size=model.input_size[0],
                                      num_classes=model.num_classes)
  return {"params": cost.trainable_params, "flops": cost.multiply_accumulate_flops,
          "flops_with_elementwise": cost.flops}


class CostCache:
  """`arm_costs`, computed once per arm and kept in a JSON file across reruns."""

  def __init__(self, path: pathlib.Path):
    self._path = path
    self._costs = json.loads(path.read_text()) if path.exists() else {}

  def get(self, arm: Arm) -> dict:
    if arm.name not in self._costs:
      self._costs[arm.name] = arm_costs(arm)
      _write_json(self._path, self._costs)
    return self._costs[arm.name]


# -- The study. ------------------------------------------------------------------------


def plan(arms: Sequence[str], seeds: int, ablation_seeds: int) -> List[tuple]:
  """[(arm, seed)] in the order they run: seed by seed, so that an interrupted study
  already has every arm once."""
  counts = {name: seeds if name in TABLE6_ARMS else ablation_seeds for name in arms}
  return [(ARMS_BY_NAME[name], seed) for seed in range(max(counts.values()))
          for name in arms if seed < counts[name]]


def _parse_arms(text: str, parser: argparse.ArgumentParser) -> List[str]:
  names = [n.strip() for n in text.split(",") if n.strip()]
  unknown = [n for n in names if n not in ARMS_BY_NAME]
  if unknown or not names:
    parser.error(f"--arms: unknown arm(s) {unknown or text!r}; choose from "
                 f"{','.join(ARMS_BY_NAME)}")
  return [arm.name for arm in ARMS if arm.name in names]


def _positive(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value <= 0:
    raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
  return value


def parse_args(argv=None) -> argparse.Namespace:
  from gsa_keras.data import fashion_mnist
  parser = argparse.ArgumentParser(
      prog=f"python -m {_PROG}", description=__doc__.splitlines()[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="\n".join(__doc__.splitlines()[1:]))
  parser.add_argument("--out", default="study_results/fashion_mnist",
                      help="results directory; rerun with the same one to resume "
                           "(default: %(default)s)")
  parser.add_argument("--source", default=fashion_mnist.DEFAULT_SOURCE,
                      help="directory of the four IDX .gz files (default: %(default)s, "
                           "from `apt-get install dataset-fashion-mnist`)")
  parser.add_argument("--data_dir", default=None,
                      help="TFRecords directory, converted from --source if missing "
                           f"(default: {fashion_mnist.default_dir()}; with --quick: "
                           "OUT/quick_data)")
  parser.add_argument("--arms", default=",".join(ARMS_BY_NAME),
                      help="comma-separated arms (default: all: %(default)s)")
  parser.add_argument("--seeds", type=_positive, default=5,
                      help="seeds of the Table 6 arms, conv and gsa (default: "
                           "%(default)s)")
  parser.add_argument("--ablation_seeds", type=_positive, default=1,
                      help="seeds of every other arm (default: %(default)s)")
  parser.add_argument("--steps", type=_positive, default=None,
                      help="training steps of every run (default: the experiment's; "
                           "4 with --quick)")
  parser.add_argument("--evaluations", type=_positive, default=None,
                      help="validations during each run (default: the experiment's "
                           "EVALUATIONS; 2 with --quick)")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: 96 images per IDX set, batch 8, 4 steps")
  parser.add_argument("--pause_at_step", type=_positive, default=None,
                      help="stop each unfinished run's training at this step "
                           "(checkpointed); a later rerun without it continues")
  args = parser.parse_args(argv)
  args.arms = _parse_arms(args.arms, parser)
  return args


def main(argv=None) -> dict:
  """Runs the study; returns the aggregated results (also written to --out)."""
  args = parse_args(argv)
  out = pathlib.Path(args.out).resolve()
  settings = default_settings(args.quick, args.steps, args.evaluations)
  data_dir = args.data_dir or (str(out / "quick_data") if args.quick else None)
  if data_dir is None:
    from gsa_keras.data import fashion_mnist
    data_dir = fashion_mnist.default_dir()
  out.mkdir(parents=True, exist_ok=True)
  (out / ".gitignore").write_text(f"{MODEL_DIRS}/\nquick_data/\n")
  try:
    counts = prepare_data(args.source, data_dir, settings)
  except (ValueError, OSError) as e:
    raise SystemExit(f"{_PROG}: error: {e}") from None

  batches = out / report.BATCHES_PNG
  (out / MODEL_DIRS).mkdir(exist_ok=True)
  if not batches.exists():
    _run_process([sys.executable, "-m", "studies.evaluation", f"--batches={batches}",
                  f"--config_file={ARMS_BY_NAME['gsa'].config_file}",
                  "--params_override=" + _overrides(settings, data_dir, 0, settings.steps,
                                                    counts["validation"])],
                 out / MODEL_DIRS / "batches.log")
  runs = plan(args.arms, args.seeds, args.ablation_seeds)
  costs = CostCache(out / "costs.json")
  statuses = []
  _log(f"{len(runs)} runs of {settings.steps} steps (batch {settings.batch_size}), "
       f"{settings.steps // settings.validation_interval} validations on "
       f"{counts['validation']} images, test on {counts['test']}; results in {out}")
  for index, (arm, seed) in enumerate(runs, 1):
    _log(f"run {index}/{len(runs)}: {arm.name}, seed {seed}")
    try:
      record = run_one(arm, seed, out, settings, data_dir, counts,
                       args.pause_at_step, costs.get)
    except ValueError as e:
      raise SystemExit(f"{_PROG}: error: {e}") from None
    statuses.append({k: record.get(k) for k in
                     ("arm", "seed", "status", "resumed_from_steps", "step", "error")})
    results = report.collect(out, settings, machine_load=_load(),
                             order=[arm.name for arm in ARMS])
    results["statuses"] = statuses
    report.write(results, out)
  failed = [s for s in statuses if s["status"] == "failed"]
  if failed:
    raise SystemExit(f"{_PROG}: error: {len(failed)} run(s) failed: "
                     + "; ".join(f"{s['arm']}-seed{s['seed']}: {s['error']}"
                                 for s in failed))
  return results


if __name__ == "__main__":
  main()
