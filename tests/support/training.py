"""Running `python -m gsa_keras.train` in a subprocess and reading what it wrote; models
as training leaves them."""

import glob
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[2]
DIGITS_YAML = "official_configs/digits/gsa_resnet26_cpu.yaml"
# The README's main command, minus the model_dir.
MAIN_COMMAND = [sys.executable, "-m", "gsa_keras.train",
                "--experiment=gsa_resnet_digits", f"--config_file={DIGITS_YAML}",
                "--mode=train_and_eval"]


def environment(data_dir, **extra):
  """The subprocess environment: this checkout importable, digits under data_dir."""
  env = dict(os.environ)
  env.update(GSA_KERAS_DATA_DIR=str(data_dir), TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(
                 [str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p]))
  env.update({k: str(v) for k, v in extra.items()})
  return env


def train_command(model_dir, *flags, mode="train_and_eval"):
  command = [c for c in MAIN_COMMAND if not c.startswith("--mode=")]
  return command + [f"--mode={mode}", f"--model_dir={model_dir}", *flags]


def run(command, env, timeout=900):
  """Runs `command` in the repo root; returns the CompletedProcess (text output)."""
  return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=timeout, check=False)


def scalars(event_dir, tag):
  """{step: value} of a scalar summary `tag` in the event files under event_dir."""
  values = {}
  for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


def checkpoint_step(path):
  """The global step stored in a checkpoint (a file prefix or a directory)."""
  if os.path.isdir(path):
    path = tf.train.latest_checkpoint(path)
  return int(tf.train.load_variable(path, "global_step/.ATTRIBUTES/VARIABLE_VALUE"))


def randomize_batch_norm(model, seed=0):
  """Moves every batch norm's statistics and affine parameters off their initial values,
  as training would, so that evaluation-mode outputs depend on all of them."""
  rng = np.random.default_rng(seed)
  draws = {"moving_mean": lambda s: rng.normal(0.0, 0.1, s),
           "moving_variance": lambda s: rng.uniform(0.5, 2.0, s),
           "gamma": lambda s: rng.uniform(0.5, 1.5, s),
           "beta": lambda s: rng.normal(0.0, 0.1, s)}
  for weight in model.weights:
    short_name = weight.name.split("/")[-1].split(":")[0]  # Both Kerases' names.
    if short_name in draws:
      weight.assign(draws[short_name](weight.shape))


def write_digits_run(model_dir, experiment="gsa_resnet_digits"):
  """A run as training leaves it, without training: the experiment's model with its
  batch norms moved (`randomize_batch_norm`), a checkpoint that also holds the optimizer
  and the global step (7), and `params.yaml`, in `model_dir`. Returns (model,
  checkpoint prefix)."""
  from official.core import task_factory
  from official.core import train_utils
  from gsa_keras import runs
  params = runs.load_params(experiment)
  model = runs.build_model(params)
  randomize_batch_norm(model)
  optimizer = task_factory.get_task(params.task).create_optimizer(
      params.trainer.optimizer_config, params.runtime)
  prefix = tf.train.Checkpoint(
      model=model, optimizer=optimizer,
      global_step=tf.Variable(7, dtype=tf.int64)).save(
          os.path.join(str(model_dir), "ckpt"))
  train_utils.serialize_config(params, str(model_dir))
  return model, prefix
