"""End to end through `python -m gsa_keras.train` on the digits default experiment.

- The README's main command trains a GSA-ResNet from scratch to >= 90% validation
  top-1, and `--mode=eval` re-evaluates the checkpoint it left.
- A run killed with SIGKILL after a checkpoint resumes from it with the same command.
- Two workers on 127.0.0.1 (`TF_CONFIG`, MultiWorkerMirroredStrategy) end with
  identical weights.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from gsa_keras.data import digits
from tests.support import shared_runs
from tests.support import training

pytestmark = pytest.mark.slow

# Small runs for the resume and multi-worker tests: the digits default with fewer
# steps and GSA modules in residual groups 3-4 only (Table 5), to start faster.
_SHORT = ("task.model.backbone.gsa_resnet.attention_groups=[3,4],"
          "trainer.steps_per_loop=5,trainer.summary_interval=5,"
          "trainer.checkpoint_interval=5,trainer.validation_interval=1000")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  digits.write_tfrecords(os.path.join(root, "digits"))
  return root


def test_main_command_trains_to_90_percent(readme_run, tmp_path):
  """The README's main job: train, evaluate, export and predict, as written there."""
  result = readme_run.check()
  model_dir = readme_run.model_dir
  print(f"main command: {readme_run.minutes:.1f} min")  # Shown with `pytest -s`.

  # Progress was logged as it went; config, checkpoints and summaries are in place.
  assert "train | step:     50" in result.stdout
  assert (model_dir / "params.yaml").exists()
  assert training.checkpoint_step(str(model_dir)) == 200
  assert training.scalars(str(model_dir / "train"), "training_loss")
  accuracy = training.scalars(str(model_dir / "validation"), "accuracy")
  assert accuracy[200] >= 0.90, accuracy
  # Exported, and the held-out sample digit 7 is predicted as a 7.
  assert (readme_run.export_dir / "saved_model.pb").exists()
  assert readme_run.tflite_path.exists()
  assert re.search(r"^\s+1\. 7\s", result.stdout, re.M), result.stdout[-2000:]

  # Evaluating the checkpoint again (--mode=eval) gives the same accuracy.
  copy = shared_runs.copy_of(readme_run, tmp_path)  # Evaluation writes summaries.
  result = training.run(training.train_command(copy, mode="eval"),
                       training.environment(readme_run.data_dir))
  assert result.returncode == 0, result.stderr[-5000:]
  assert training.checkpoint_step(str(copy)) == 200
  (evaluated,) = set(re.findall(r"'accuracy': np\.float32\(([0-9.]+)\)", result.stdout))
  assert float(evaluated) == pytest.approx(accuracy[200], abs=1e-6)


def test_killed_run_resumes_from_its_checkpoint(data_dir, tmp_path):
  model_dir = tmp_path / "resume"
  command = training.train_command(
      model_dir, f"--params_override={_SHORT},trainer.train_steps=30",
      mode="train")
  env = training.environment(data_dir)
  process = subprocess.Popen(command, cwd=training.REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 300
    while tf.train.latest_checkpoint(str(model_dir)) is None:
      assert process.poll() is None, "training ended before its first checkpoint"
      assert time.time() < deadline, "no checkpoint after 5 minutes"
      time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
  finally:
    process.wait()
  assert process.returncode == -signal.SIGKILL
  killed_at = training.checkpoint_step(str(model_dir))
  assert 0 < killed_at < 30
  saved = tf.train.latest_checkpoint(str(model_dir))

  result = training.run(command, env)
  assert result.returncode == 0, result.stderr[-5000:]
  # It restored the latest checkpoint, went on from its step and finished.
  assert f"restored model from {saved}." in result.stdout
  assert f"train | step: {killed_at:6d} | training until step 30" in result.stdout
  assert "train | step:      0" not in result.stdout
  assert training.checkpoint_step(str(model_dir)) == 30


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _checkpoint_values(checkpoint):
  """{name: value} of every tensor in a checkpoint: weights, batch-norm statistics,
  optimizer slots, step."""
  return {name: tf.train.load_variable(checkpoint, name)
          for name, _ in tf.train.list_variables(checkpoint)
          if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_two_workers_train_to_identical_weights(data_dir, tmp_path):
  workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
  model_dir = tmp_path / "multi_worker"
  command = training.train_command(
      model_dir,
      f"--params_override={_SHORT},trainer.train_steps=10,"
      "runtime.distribution_strategy=multi_worker_mirrored",
      mode="train")
  processes, logs, scratch = [], [], []
  for index in range(2):
    # The non-chief worker checkpoints into a temporary directory (Model Garden):
    # give each worker its own TMPDIR to find it.
    scratch.append(tmp_path / f"tmp{index}")
    scratch[-1].mkdir()
    tf_config = {"cluster": {"worker": workers},
                 "task": {"type": "worker", "index": index}}
    env = training.environment(data_dir, TF_CONFIG=json.dumps(tf_config),
                              TMPDIR=scratch[-1])
    # Files, not pipes: an undrained pipe would block one worker and, through the
    # collectives, the other.
    logs.append(tmp_path / f"worker{index}.log")
    with open(logs[-1], "w") as log:
      processes.append(subprocess.Popen(
          command, cwd=training.REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
  try:
    for process in processes:
      process.wait(timeout=600)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  for process, log in zip(processes, logs):
    output = log.read_text()
    assert process.returncode == 0, output[-5000:]
    assert "train | step:     10" in output

  chief = tf.train.latest_checkpoint(str(model_dir))
  (worker_dir,) = [os.path.dirname(p) for p in tf.io.gfile.glob(
      str(scratch[1] / "*" / "checkpoint"))]
  worker = tf.train.latest_checkpoint(worker_dir)
  assert training.checkpoint_step(chief) == training.checkpoint_step(worker) == 10
  chief_vars, worker_vars = _checkpoint_values(chief), _checkpoint_values(worker)
  assert chief_vars.keys() == worker_vars.keys() and len(chief_vars) > 100
  for name, value in chief_vars.items():
    np.testing.assert_array_equal(value, worker_vars[name], err_msg=name)
