"""The tests that train a network and assert an accuracy, run over many seeds.

  python -m studies.test_margins --checks short_fit --seeds 0-9
  TF_ENABLE_ONEDNN_OPTS=0 python -m studies.test_margins --checks short_fit \
      --seeds 0-9 --tag onednn_off
  python -m studies.test_margins --checks bars_keras3,bars_tf_keras --seeds 0-9
  python -m studies.test_margins --checks keras_fit --seeds 0-4
  python -m studies.test_margins --checks san_fit_pairwise,san_fit_patchwise \
      --seeds 0-4 --tag xla_e12_shift2
  python -m studies.test_margins --checks san_fit_pairwise,san_fit_patchwise \
      --seeds 0-5 --tag xla --recipe '{"epochs": 8, "max_shift": 0}'

A seeded test's outcome still moves with the CPU (its kernels round differently), so
its thresholds come from the distribution over seeds, with a margin, not from one
run. Each check is the training of one test, defined here once and used by the test:

- `short_fit` (`tests/test_layer_learning.py`, the digits short fit): a strided 3x3
  convolution, two `GlobalSelfAttention` layers (a ReLU between them, no batch norm
  of the model's own), global pooling and a dense head, fitted with Adam 3e-3 for 5
  epochs of batch 64 (115 steps). It records `train_accuracy` (the fit's last
  epoch: training mode, batch statistics), `held_out_accuracy` (`evaluate` on the 360
  held-out digits: the moving statistics), `train_eval_accuracy` (`evaluate` on the
  training digits: separates overfitting, low held out only, from a train/evaluation
  mismatch of the batch norm, low on both) and `held_out_accuracy_recalibrated`
  (after `gsa_keras.layers.recalibrate_batch_norm` on the training digits:
  separates statistics that lag the weights from statistics that are wrong in kind).
- `bars_keras3`, `bars_tf_keras` (`tests/test_layer_learning.py`, both flavours):
  two GSA layers with batch norm learn vertical vs horizontal bars; loss ratio, train
  and test accuracy.
- `keras_fit` (`tests/test_applications.py`, the README's Keras-models example):
  GSAResNet26 fitted with SGD 0.05 for 6 epochs on the digits; validation top-1.
- `san_fit_pairwise`, `san_fit_patchwise` (`tests/test_san_network.py`): SAN10 with
  that operator on the 32x32 digits (`narrow_footprints`: stages 4 and 5 see 2x2 and
  1x1 maps), fitted with Adam from 1e-3 with cosine decay to 0 for `SAN_FIT_EPOCHS`
  epochs of batch 64, each training image shifted by up to `SAN_FIT_MAX_SHIFT`
  pixels, the steps compiled with XLA (5-6 minutes a fit on 2 cores); validation
  top-1, also after each epoch. `--recipe` varies the fit (`san_fit`'s arguments);
  each record says which recipe made it. The recipes measured, in order (tags):
  `no_xla`, 8 epochs without shifts or XLA (11-15 minutes a fit); `xla`, the same
  with XLA; `xla_smooth0.1_shift2`, label smoothing 0.1 and 2-pixel shifts for 8
  epochs (behind on training accuracy); `xla_e12_shift2`, the default. Without
  shifts SAN10 fits the 1,437 digits to 100% within 8 epochs and its validation
  top-1 spreads over 90-94%; with them it trains for 12 epochs and generalises
  better. (SGD 0.05 as in `keras_fit`, or Adam at a constant 1e-3, left the
  evaluation-mode accuracy far below the training accuracy after 5-6 epochs: the
  batch norms' moving statistics lag weights that still move fast; the decay lets
  them settle.)

One JSON record per check, tag and seed lands in `OUT/runs/` as soon as it is
measured, so an interrupted run resumes; `OUT/summary.json` holds the distribution
(min, quantiles, mean, std) per check, tag and measure.
"""

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Dict, List

import numpy as np

from reports import machine


def parse_seeds(text: str) -> List[int]:
  """`0-9` or `0,3,5` as a list of seeds."""
  seeds = []
  for part in text.split(","):
    part = part.strip()
    if "-" in part:
      first, last = part.split("-")
      seeds.extend(range(int(first), int(last) + 1))
    elif part:
      seeds.append(int(part))
  if not seeds or min(seeds) < 0:
    raise argparse.ArgumentTypeError(f"--seeds: expected e.g. 0-9 or 0,3,5, got {text!r}")
  return seeds


def build_short_fit_model(keras, layers, width: int = 32, num_heads: int = 4,
                          norm_momentum=None):
  """The short fit's model: conv, GSA, ReLU, GSA, pooling, dense (10 logits)."""
  options = {} if norm_momentum is None else {"norm_momentum": norm_momentum}
  inputs = keras.Input((32, 32, 3))
  x = keras.layers.Conv2D(width, 3, strides=2, padding="same")(inputs)
  x = layers.GlobalSelfAttention(width, num_heads=num_heads, **options)(x)
  x = keras.layers.ReLU()(x)
  x = layers.GlobalSelfAttention(width, num_heads=num_heads, **options)(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(10)(x))


def short_fit(seed: int, epochs: int = 5, norm_momentum=None) -> Dict[str, float]:
  """Fits the short fit's model with `seed`; returns the four accuracies of the module
  docstring."""
  import keras
  from gsa_keras.applications import load_digits
  from gsa_keras.layers import keras3 as layers
  from gsa_keras.layers import recalibrate_batch_norm
  (x_train, y_train), (x_val, y_val) = load_digits()
  keras.utils.set_random_seed(seed)
  model = build_short_fit_model(keras, layers, norm_momentum=norm_momentum)
  model.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  start = time.time()
  history = model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
  record = {
      "train_accuracy": float(history.history["accuracy"][-1]),
      "held_out_accuracy": float(model.evaluate(x_val, y_val, verbose=0)[1]),
      "train_eval_accuracy": float(model.evaluate(x_train, y_train, verbose=0)[1]),
  }
  recalibrate_batch_norm(model, x_train)
  record["held_out_accuracy_recalibrated"] = float(
      model.evaluate(x_val, y_val, verbose=0)[1])
  record["seconds"] = round(time.time() - start, 1)
  return record


def bars_dataset(count: int, seed: int):
  """8x8 images with one 3-pixel bar at a random place: label 0 vertical, 1 horizontal."""
  rng = np.random.default_rng(seed)
  images = rng.normal(scale=0.1, size=(count, 8, 8, 1)).astype(np.float32)
  labels = rng.integers(0, 2, size=count)
  for image, label in zip(images, labels):
    a, b = rng.integers(0, 6), rng.integers(0, 8)
    if label:
      image[b, a:a + 3, 0] += 1.0
    else:
      image[a:a + 3, b, 0] += 1.0
  return images, labels


def bars_fit(keras, layers, seed: int) -> Dict[str, float]:
  """Two GSA layers with batch norm (momentum 0.9, so that the moving statistics
  settle in this short training) fitted on 1,024 bar images for 8 epochs of Adam
  3e-3, tested on 256 others: losses before and after, train and test accuracy."""
  keras.utils.set_random_seed(seed)
  train_x, train_y = bars_dataset(1024, seed=0)
  test_x, test_y = bars_dataset(256, seed=1)
  inputs = keras.Input(shape=(8, 8, 1))
  x = keras.layers.Conv2D(16, 1, use_bias=False)(inputs)
  for _ in range(2):
    x = layers.GlobalSelfAttention(16, num_heads=4, norm_momentum=0.9)(x)
    x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  model = keras.Model(inputs, keras.layers.Dense(2)(x))
  model.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  initial_loss = model.evaluate(train_x, train_y, verbose=0)[0]
  history = model.fit(train_x, train_y, batch_size=64, epochs=8, verbose=0)
  logits = model.predict(test_x, verbose=0)  # Evaluation mode: moving statistics.
  return {"loss_ratio": float(history.history["loss"][-1] / initial_loss),
          "train_accuracy": float(history.history["accuracy"][-1]),
          "test_accuracy": float(np.mean(logits.argmax(-1) == test_y)),
          "finite": bool(np.isfinite(logits).all())}


def keras_fit(seed: int) -> Dict[str, float]:
  """The README's Keras-models example with `seed`: validation top-1."""
  import keras
  from gsa_keras.applications import GSAResNet26, load_digits
  (x_train, y_train), (x_val, y_val) = load_digits()
  keras.utils.set_random_seed(seed)
  model = GSAResNet26(input_shape=(32, 32, 3), classes=10)
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
  history = model.fit(x_train, y_train, batch_size=64, epochs=6, verbose=0)
  return {"train_accuracy": float(history.history["accuracy"][-1]),
          "validation_accuracy": float(model.evaluate(x_val, y_val, verbose=0)[1])}


SAN_FIT_EPOCHS = 12
SAN_FIT_MAX_SHIFT = 2
SAN_FIT_BATCH = 64


def _shifted_batches(tf, images, labels, max_shift: int, batch_size: int, seed: int):
  """The training digits as a shuffled `tf.data` pipeline, each image moved by a random
  shift of up to `max_shift` pixels along each axis; the uncovered edge takes the
  background (each channel's smallest value in the image)."""
  size = images.shape[1:]

  def shift(image, label):
    background = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    padded = tf.pad(image - background,
                    [[max_shift, max_shift], [max_shift, max_shift], [0, 0]]) + background
    return tf.image.random_crop(padded, size), label

  return (tf.data.Dataset.from_tensor_slices((images, labels))
          .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
          .map(shift).batch(batch_size))


def san_fit(operator: str, seed: int, epochs: int = SAN_FIT_EPOCHS,
            jit_compile: bool = True, label_smoothing: float = 0.0,
            max_shift: int = SAN_FIT_MAX_SHIFT,
            learning_rate: float = 1e-3) -> Dict[str, object]:
  """SAN10 (`operator`) fitted on the 32x32 digits with `seed`: Adam from
  `learning_rate`, cosine decay to 0 over the fit, batch 64, cross-entropy with
  `label_smoothing`, training images shifted by up to `max_shift` pixels, the steps
  XLA-compiled if `jit_compile`. Returns the last epoch's training accuracy, the
  validation top-1 after each epoch and at the end, and the seconds the fit took."""
  import keras
  import tensorflow as tf
  from gsa_keras.applications import SAN10, load_digits
  (x_train, y_train), (x_val, y_val) = load_digits()
  keras.utils.set_random_seed(seed)
  model = SAN10(operator, input_shape=(32, 32, 3), classes=10, narrow_footprints=True)
  steps = epochs * -(-len(x_train) // SAN_FIT_BATCH)
  model.compile(optimizer=keras.optimizers.Adam(
                    keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                loss=keras.losses.CategoricalCrossentropy(
                    label_smoothing=label_smoothing),
                metrics=["accuracy"], jit_compile=jit_compile)
  y_train, y_val = (keras.utils.to_categorical(y, 10) for y in (y_train, y_val))
  if max_shift:
    training = {"x": _shifted_batches(tf, x_train, y_train, max_shift, SAN_FIT_BATCH,
                                      seed),
                "shuffle": False}  # The pipeline shuffles each epoch itself.
  else:
    training = {"x": x_train, "y": y_train, "batch_size": SAN_FIT_BATCH}
  start = time.time()
  history = model.fit(**training, epochs=epochs, verbose=0,
                      validation_data=(x_val, y_val))
  return {"train_accuracy": float(history.history["accuracy"][-1]),
          "validation_accuracy": float(model.evaluate(x_val, y_val, verbose=0)[1]),
          "validation_accuracy_by_epoch": [
              round(float(a), 4) for a in history.history["val_accuracy"]],
          "seconds": round(time.time() - start, 1)}


def san_fit_recipe(**overrides) -> Dict[str, object]:
  """`san_fit`'s whole recipe: its defaults, with `overrides`."""
  import inspect
  defaults = {name: parameter.default
              for name, parameter in inspect.signature(san_fit).parameters.items()
              if name not in ("operator", "seed")}
  return {**defaults, **overrides}


def _parse_recipe(text: str) -> Dict[str, object]:
  """`--recipe`: a JSON object whose keys are `san_fit`'s recipe arguments."""
  allowed = san_fit_recipe()
  try:
    recipe = json.loads(text)
  except json.JSONDecodeError as error:
    raise argparse.ArgumentTypeError(f"not JSON ({error}): {text!r}") from None
  if not isinstance(recipe, dict) or set(recipe) - set(allowed):
    raise argparse.ArgumentTypeError(
        f"expected a JSON object with keys from {', '.join(allowed)}, "
        f"got {text!r}")
  for key, value in recipe.items():
    expected = type(allowed[key])
    fits = (isinstance(value, bool) == (expected is bool) and
            isinstance(value, (int, float) if expected is float else expected) and
            value >= 0)
    if not fits:
      raise argparse.ArgumentTypeError(
          f"{key} must be a non-negative {expected.__name__}, got {value!r}")
  return recipe


def _flavour(name: str):
  if name == "keras3":
    import keras
    from gsa_keras.layers import keras3 as layers
  else:
    import tf_keras as keras
    from gsa_keras.layers import tf_keras as layers
  return keras, layers


CHECKS = {
    "short_fit": short_fit,
    "bars_keras3": lambda seed: bars_fit(*_flavour("keras3"), seed),
    "bars_tf_keras": lambda seed: bars_fit(*_flavour("tf_keras"), seed),
    "keras_fit": keras_fit,
    "san_fit_pairwise": lambda seed, **recipe: san_fit("pairwise", seed, **recipe),
    "san_fit_patchwise": lambda seed, **recipe: san_fit("patchwise", seed, **recipe),
}
# The checks that take `--recipe` (`san_fit`'s arguments).
RECIPE_CHECKS = ("san_fit_pairwise", "san_fit_patchwise")


def summarize(values: List[float]) -> Dict[str, float]:
  array = np.asarray(values, dtype=float)
  return {"n": len(values), "min": float(array.min()),
          "p10": float(np.quantile(array, 0.1)), "median": float(np.median(array)),
          "mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(values) > 1
          else 0.0, "max": float(array.max())}


def write_summary(out: pathlib.Path) -> dict:
  """{check: {tag: distribution of each numeric measure}} over every record in
  `out/runs`, also written to `out/summary.json`."""
  groups: Dict[tuple, List[dict]] = {}
  for path in sorted((out / "runs").glob("*.json")):
    record = json.loads(path.read_text())
    groups.setdefault((record["check"], record["tag"]), []).append(record)
  summary: Dict[str, dict] = {}
  for (check, tag), records in sorted(groups.items()):
    keys = [key for key, value in records[0]["measures"].items()
            if isinstance(value, float)]
    entry = {"seeds": sorted(r["seed"] for r in records), "cpu": records[0]["cpu"],
             **{key: summarize([r["measures"][key] for r in records]) for key in keys}}
    if "train_accuracy" in keys and "held_out_accuracy" in keys:
      entry["gap"] = summarize([r["measures"]["train_accuracy"] -
                                r["measures"]["held_out_accuracy"] for r in records])
    summary.setdefault(check, {})[tag] = entry
  (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
  return summary


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(prog="python -m studies.test_margins",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--checks", default="short_fit",
                      help=f"comma-separated, of {', '.join(CHECKS)} (default: "
                           "%(default)s)")
  parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-9"))
  parser.add_argument("--out", default="study_results/test_margins")
  parser.add_argument("--tag", default=None,
                      help="label of this configuration (default: onednn_on or "
                           "onednn_off, from TF_ENABLE_ONEDNN_OPTS)")
  parser.add_argument("--norm_momentum", type=float, default=None,
                      help="short_fit only: the GSA layers' batch norm momentum "
                           "(default: theirs)")
  parser.add_argument("--recipe", type=_parse_recipe, default={},
                      help="san_fit checks only: keyword arguments of `san_fit` as a "
                           "JSON object, e.g. '{\"max_shift\": 2}' (default: its "
                           "defaults); give each recipe its own --tag")
  args = parser.parse_args(argv)
  checks = [c.strip() for c in args.checks.split(",") if c.strip()]
  unknown = [c for c in checks if c not in CHECKS]
  if unknown or not checks:
    parser.error(f"--checks: unknown {unknown or args.checks!r}; choose from "
                 f"{', '.join(CHECKS)}")
  if args.recipe and any(check not in RECIPE_CHECKS for check in checks):
    parser.error(f"--recipe: only the san_fit checks take a recipe, got --checks "
                 f"{args.checks!r}")
  tag = args.tag or ("onednn_off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0"
                     else "onednn_on")
  out = pathlib.Path(args.out)
  recipe = san_fit_recipe(**args.recipe)
  for check in set(checks) & set(RECIPE_CHECKS):  # A tag names one recipe.
    for path in (out / "runs").glob(f"{check}-{tag}-seed*.json"):
      recorded = json.loads(path.read_text()).get("recipe")
      if recorded != recipe:
        parser.error(f"--tag {tag!r}: {path} was measured with the recipe {recorded}, "
                     f"this run's is {recipe}; give this recipe its own --tag")
  (out / "runs").mkdir(parents=True, exist_ok=True)
  for check in checks:
    for seed in args.seeds:
      path = out / "runs" / f"{check}-{tag}-seed{seed}.json"
      if path.exists():
        continue
      if check == "short_fit" and args.norm_momentum is not None:
        measures = short_fit(seed, norm_momentum=args.norm_momentum)
      elif check in RECIPE_CHECKS:
        measures = CHECKS[check](seed, **args.recipe)
      else:
        measures = CHECKS[check](seed)
      record = {"check": check, "tag": tag, "seed": seed, "cpu": machine.cpu_model(),
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
                "norm_momentum": args.norm_momentum, "measures": measures}
      if check in RECIPE_CHECKS:
        record["recipe"] = recipe
      partial = path.with_name(path.name + ".partial")
      partial.write_text(json.dumps(record, indent=1) + "\n")
      partial.replace(path)
      print(json.dumps(record), file=sys.stderr, flush=True)
  return write_summary(out)


if __name__ == "__main__":
  main()
