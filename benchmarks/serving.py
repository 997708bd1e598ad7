"""Serving: the exported models as a CPU server runs them, not the Keras models.

GSA-ResNet-50, GSA-ResNet-50 with GSA in groups 2-4 (Table 5) and the Model Garden's
ResNet-50 are given random weights, saved as a training checkpoint and exported with
`gsa_keras.serving.export_lib` as `python -m gsa_keras.export` does it: a SavedModel in
float32 and one in bfloat16 (`--precision`), and the float32 TFLite flatbuffer
(`--tflite_path`, batch 1). Each is loaded as a client loads it: the SavedModel's
`serving_default` signature on uint8 images (preprocessing inside the graph), the
flatbuffer on the LiteRT interpreter with its default delegate (XNNPACK) and one thread
per usable core. Every configuration is timed in the same interleaved rounds
(`benchmarks.timing`), each call on its own: latency p50 and p99, images per second
(batch / p50) and, paired per round, the ratios to ResNet-50 in the same export and
batch, and to the same network's float32 SavedModel.
"""

import dataclasses
import gc
import os
import pathlib
import tempfile
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from ai_edge_litert import interpreter as litert

from benchmarks import network_level
from benchmarks import timing
from gsa_keras import runs
from gsa_keras.serving import export_lib

SAVED_MODEL_FLOAT32 = "saved_model_float32"
SAVED_MODEL_BFLOAT16 = "saved_model_bfloat16"
TFLITE_FLOAT32 = "tflite_float32"
EXPORTS = (SAVED_MODEL_FLOAT32, SAVED_MODEL_BFLOAT16, TFLITE_FLOAT32)
EXPORT_LABELS = {SAVED_MODEL_FLOAT32: "SavedModel float32",
                 SAVED_MODEL_BFLOAT16: "SavedModel bfloat16",
                 TFLITE_FLOAT32: "TFLite float32"}
_SAVED_MODEL_PRECISIONS = {SAVED_MODEL_FLOAT32: "float32",
                           SAVED_MODEL_BFLOAT16: "bfloat16"}
# The networks, the one the others are compared with last.
NETWORKS = (network_level.GSA, network_level.GSA_GROUPS_234, network_level.RESNET)
BASELINE = network_level.RESNET
EXPERIMENT = "gsa_resnet_imagenet"  # Its evaluation preprocessing: crop 0.875, resize.
# /proc/cpuinfo flags of the instructions that make bfloat16 fast on a CPU.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the serving part exports and times (defaults: the full run)."""
  model_id: int = 50
  input_size: int = 224
  num_classes: int = 1000
  networks: Tuple[str, ...] = NETWORKS  # `BASELINE` must be one of them.
  batches: Tuple[int, ...] = (1, 8)
  tflite_batch: int = 1  # The TFLite flatbuffer has a fixed batch size.
  warmup: int = 3
  repeats: int = 30  # Rounds; every configuration makes at least this many timed calls.
  min_sample_seconds: float = 0.02


def cpu_bfloat16_support(cpuinfo: str = "/proc/cpuinfo") -> Dict[str, bool]:
  """Which of `BFLOAT16_FLAGS` the CPU has (all False if cpuinfo is unreadable)."""
  try:
    flags = set()
    for line in pathlib.Path(cpuinfo).read_text().splitlines():
      if line.startswith("flags"):
        flags.update(line.split(":", 1)[1].split())
  except OSError:
    flags = set()
  return {flag: flag in flags for flag in BFLOAT16_FLAGS}


def config_name(network: str, export: str, batch: int) -> str:
  """The name of one timed configuration."""
  return f"{network}/{export}/b{batch}"


def experiment_params(network: str, settings: Settings):
  """The experiment config a user would export `network` with."""
  backbone = network_level.backbone_config(network, settings.model_id)
  return export_lib.load_params(EXPERIMENT, params_override={"task": {"model": {
      "num_classes": settings.num_classes,
      "input_size": [settings.input_size, settings.input_size, 3],
      "backbone": backbone.as_dict()}}})


def export_network(network: str, settings: Settings, work_dir: str) -> dict:
  """Checkpoints `network` with random weights and exports it in every format.

  Returns:
    {export: path} and the seconds each export took ("seconds": {export: s}).
  """
  params = experiment_params(network, settings)
  root = os.path.join(work_dir, network)
  model = runs.build_model(params)
  prefix = tf.train.Checkpoint(model=model).save(os.path.join(root, "run", "ckpt"))
  del model
  paths, seconds = {}, {}
  for export, precision in _SAVED_MODEL_PRECISIONS.items():
    paths[export] = os.path.join(root, export)
    start = time.perf_counter()
    module = export_lib.export_saved_model(params, prefix, paths[export],
                                           precision=precision)
    seconds[export] = time.perf_counter() - start
    if precision == "float32":
      paths[TFLITE_FLOAT32] = os.path.join(root, "model.tflite")
      start = time.perf_counter()
      export_lib.export_tflite(module, paths[TFLITE_FLOAT32])
      seconds[TFLITE_FLOAT32] = time.perf_counter() - start
    del module
    gc.collect()
  return {"paths": paths, "seconds": seconds}


def _images(batch: int, size: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (batch, size, size, 3),
                                              dtype=np.uint8)


class _Loaded:
  """The exports of the networks, loaded as clients load them (kept alive here)."""

  def __init__(self, exports: Dict[str, dict], threads: int):
    self._saved_models = {}
    self._runners = {}
    for network, exported in exports.items():
      for export, path in exported["paths"].items():
        if export == TFLITE_FLOAT32:
          interpreter = litert.Interpreter(model_path=path, num_threads=threads)
          self._runners[network] = (interpreter, interpreter.get_signature_runner(
              tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY))
        else:
          self._saved_models[network, export] = tf.saved_model.load(path)

  def function(self, network: str, export: str, batch: int,
               input_size: int) -> Callable[[], object]:
    """A call of one export on a fixed batch of random uint8 images."""
    images = _images(batch, input_size, seed=batch)
    if export == TFLITE_FLOAT32:
      runner = self._runners[network][1]
      return lambda: runner(inputs=images)
    serve = self._saved_models[network, export].signatures[
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    inputs = tf.constant(images)
    return lambda: serve(inputs=inputs)


def configurations(settings: Settings):
  """(network, export, batch) of every timed configuration, in table order."""
  result = []
  for export in EXPORTS:
    batches = ((settings.tflite_batch,) if export == TFLITE_FLOAT32
               else settings.batches)
    for batch in batches:
      for network in settings.networks:
        result.append((network, export, batch))
  return result


def _ratio(timings, numerator: str, denominator: Optional[str]) -> Optional[float]:
  if denominator is None or denominator == numerator or denominator not in timings:
    return None
  return timing.paired_ratio(timings[numerator], timings[denominator])


def run(settings: Settings, log: Callable[[str], None] = print,
        work_dir: Optional[str] = None) -> dict:
  """Exports the networks, times every configuration side by side, returns rows."""
  threads = len(os.sched_getaffinity(0))
  names = network_level.network_names(settings.model_id)
  with tempfile.TemporaryDirectory(prefix="gsa_serving_", dir=work_dir) as root:
    exports = {}
    for network in settings.networks:
      exports[network] = export_network(network, settings, root)
      log(f"serving: exported {names[network]} (" + ", ".join(
          f"{EXPORT_LABELS[e]} {s:.0f} s" for e, s in exports[network]["seconds"].items())
          + ")")
    loaded = _Loaded(exports, threads)
    functions = {config_name(*config): loaded.function(*config, settings.input_size)
                 for config in configurations(settings)}
    start = time.perf_counter()
    timings = timing.time_side_by_side(
        functions, settings.warmup, settings.repeats, settings.min_sample_seconds,
        record_calls=True)
    timed_seconds = time.perf_counter() - start
    del loaded, functions
    gc.collect()
  rows = []
  for network, export, batch in configurations(settings):
    name = config_name(network, export, batch)
    measured = timings[name]
    p50 = measured.percentile(50)
    rows.append({
        "network": network, "export": export, "batch": batch,
        "timing": measured.to_json(), "p50": p50, "p99": measured.percentile(99),
        "images_per_second": batch / p50,
        "ratio_to_baseline": _ratio(timings, name,
                                    config_name(BASELINE, export, batch)),
        "ratio_to_saved_model_float32": _ratio(
            timings, name, config_name(network, SAVED_MODEL_FLOAT32, batch)),
    })
    log(f"serving {names[network]} {EXPORT_LABELS[export]} batch {batch}: p50 "
        f"{p50 * 1e3:.1f} ms, p99 {rows[-1]['p99'] * 1e3:.1f} ms, "
        f"{rows[-1]['images_per_second']:.1f} images/s")
  return {
      "model_id": settings.model_id, "input_size": settings.input_size,
      "num_classes": settings.num_classes,
      "networks": {network: names[network] for network in settings.networks},
      "baseline": BASELINE, "experiment": EXPERIMENT,
      "cpu_bfloat16": cpu_bfloat16_support(), "tflite_threads": threads,
      "tflite_delegate": "XNNPACK (the interpreter's default)",
      "export_seconds": {network: exported["seconds"]
                         for network, exported in exports.items()},
      "timed_seconds": timed_seconds, "repeats": settings.repeats,
      "rows": rows,
  }
