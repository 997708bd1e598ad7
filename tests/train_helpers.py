"""Running `python -m gsa_keras.train` in a subprocess and reading what it wrote."""

import glob
import os
import pathlib
import subprocess
import sys

import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]
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
