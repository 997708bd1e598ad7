"""A trained run on a data split: top-1, loss and how large its logits get; and a
picture of what a run trains and is tested on.

  python -m studies.evaluation --model_dir DIR --data FILE.tfrecord --out test.json
  python -m studies.evaluation --batches batches.png --experiment E --config_file Y

The first form restores the latest checkpoint of a `gsa_keras.train` model_dir (its
own `params.yaml`), runs the model in evaluation mode over every image of `--data`
(the evaluation pipeline of the experiment's task) and writes a JSON record:

- `top1`, `top5`: accuracy;
- `loss`: the mean cross-entropy of the softmax of the logits (no label smoothing),
  `loss_with_smoothing`: the task's training loss on the same images;
- `max_abs_logit`: the largest |logit| of each image, summarised as its median,
  99th and 99.9th percentile and maximum, and `share_above_{bound}` for bounds
  10, 100 and 1e4: how often a network answers with a far-off logit;
- `non_finite`: images with a NaN or infinite logit.

The second form writes a grid of the first training batch and the first evaluation
batch, as the task's input pipelines deliver them (after crops and flips, before the
network), so anyone can see what the networks learn from.
"""

import argparse
import json
import math
import pathlib
import sys
from typing import Dict, Sequence

import numpy as np

LOGIT_BOUNDS = (10, 100, 10_000)


def logit_statistics(logits: np.ndarray, labels: np.ndarray,
                     label_smoothing: float = 0.0) -> Dict[str, float]:
  """Accuracy, cross-entropy and the size of the largest |logit| of `logits`
  `(n, classes)` for integer `labels` `(n,)`, computed in float64."""
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels)
  finite = np.isfinite(logits).all(axis=1)
  largest = np.abs(np.where(np.isfinite(logits), logits, np.inf)).max(axis=1)
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  classes = logits.shape[1]
  targets = np.full(logits.shape, label_smoothing / classes)
  targets[np.arange(len(labels)), labels] += 1.0 - label_smoothing
  with np.errstate(invalid="ignore"):
    loss = -(targets * np.where(targets > 0, log_probs, 0)).sum(axis=1)
    plain = -log_probs[np.arange(len(labels)), labels]
  top5 = np.argsort(-logits, axis=1)[:, :5]
  with np.errstate(invalid="ignore"):  # Quantiles of infinite values.
    quantiles = np.quantile(largest, [0.5, 0.99, 0.999])
  record = {
      "images": int(len(labels)),
      "top1": float(np.mean(logits.argmax(axis=1) == labels)),
      "top5": float(np.mean((top5 == labels[:, None]).any(axis=1))),
      "loss": float(np.mean(plain)),
      "loss_with_smoothing": float(np.mean(loss)),
      "max_abs_logit": {
          "median": float(quantiles[0]),
          "p99": float(quantiles[1]),
          "p999": float(quantiles[2]),
          "max": float(largest.max()),
      },
      "non_finite": int((~finite).sum()),
  }
  for bound in LOGIT_BOUNDS:
    record[f"share_above_{bound:g}"] = float(np.mean(largest > bound))
  return record


def evaluate(model_dir: str, data: str, batch_size: int = 500,
             experiment: str = "gsa_resnet_fashion_mnist") -> Dict:
  """`logit_statistics` of the latest checkpoint in `model_dir` (a run of
  `experiment`, configured by its own params.yaml) on the TFRecord `data`."""
  import tensorflow as tf
  from official.core import task_factory
  from gsa_keras import runs
  params = runs.load_params(experiment, runs.run_config_files(model_dir), {
      "task": {"validation_data": {"input_path": data, "global_batch_size": batch_size,
                                   "drop_remainder": False}}})
  task = task_factory.get_task(params.task)
  model = runs.load_model(params, model_dir)
  predict = tf.function(lambda images: model(images, training=False))
  logits, labels = [], []
  for images, batch_labels in task.build_inputs(params.task.validation_data):
    logits.append(tf.cast(predict(images), tf.float64).numpy())
    labels.append(batch_labels.numpy())
  logits, labels = np.concatenate(logits), np.concatenate(labels)
  if labels.ndim == 2:  # One-hot.
    labels = labels.argmax(axis=1)
  record = logit_statistics(logits, labels, params.task.losses.label_smoothing)
  record["checkpoint"] = tf.train.latest_checkpoint(model_dir)
  return record


def _grid(images: np.ndarray, labels: Sequence[int], axes_row, title: str,
          class_names: Sequence[str]) -> None:
  for axis, image, label in zip(axes_row, images, labels):
    axis.imshow(np.clip(image, 0, 255).astype(np.uint8))
    axis.set_title(class_names[label] if class_names else str(label), fontsize=6)
    axis.axis("off")
  axes_row[0].text(-0.3, 0.5, title, transform=axes_row[0].transAxes, rotation=90,
                   va="center", ha="right", fontsize=8)


def write_batches(params, path: str, count: int = 16,
                  class_names: Sequence[str] = ()) -> str:
  """Draws the first `count` images of the task's first training and evaluation
  batches (normalisation undone) to the PNG `path`."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from official.core import task_factory
  from gsa_keras.applications import models
  task = task_factory.get_task(params.task)
  rows = []
  for data in (params.task.train_data, params.task.validation_data):
    images, labels = next(iter(task.build_inputs(data)))
    images = images.numpy()[:count] * np.float32(models.STDDEV_RGB) + np.float32(
        models.MEAN_RGB)
    labels = labels.numpy()[:count]
    rows.append((images, labels.argmax(-1) if labels.ndim == 2 else labels))
  columns = 8
  lines = math.ceil(count / columns)
  figure, axes = plt.subplots(2 * lines, columns, figsize=(columns * 1.1,
                                                          2 * lines * 1.25))
  axes = np.asarray(axes).reshape(2 * lines, columns)
  for block, (title, (images, labels)) in enumerate(zip(
      ("training batch", "evaluation batch"), rows)):
    for line in range(lines):
      part = slice(line * columns, (line + 1) * columns)
      _grid(images[part], labels[part], axes[block * lines + line],
            title if line == 0 else "", class_names)
  figure.suptitle("What the networks see (after the input pipeline, 32x32)", fontsize=9)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m studies.evaluation",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--model_dir", help="a gsa_keras.train model_dir")
  parser.add_argument("--data", help="TFRecord file to evaluate on")
  parser.add_argument("--out", help="JSON file for the record")
  parser.add_argument("--batch_size", type=int, default=500)
  parser.add_argument("--batches", help="PNG file: draw a training and an evaluation "
                                        "batch instead of evaluating")
  parser.add_argument("--experiment", default="gsa_resnet_fashion_mnist")
  parser.add_argument("--config_file", action="append", default=[])
  parser.add_argument("--params_override", default="")
  args = parser.parse_args(argv)
  if args.batches:
    from gsa_keras import runs
    from gsa_keras.data import fashion_mnist
    params = runs.load_params(args.experiment, args.config_file, args.params_override)
    names = (fashion_mnist.CLASS_NAMES if args.experiment == "gsa_resnet_fashion_mnist"
             else ())
    print(write_batches(params, args.batches, class_names=names))
    return
  if not (args.model_dir and args.data and args.out):
    parser.error("--model_dir, --data and --out are required (or --batches)")
  record = evaluate(args.model_dir, args.data, args.batch_size, args.experiment)
  out = pathlib.Path(args.out)
  partial = out.with_name(out.name + ".partial")
  partial.write_text(json.dumps(record, indent=1) + "\n")
  partial.replace(out)
  print(json.dumps(record), file=sys.stderr)


if __name__ == "__main__":
  main()
