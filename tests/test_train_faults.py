"""Training survives faults: a blown-up loss, a corrupt latest checkpoint, a bad model_dir."""

import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from official.vision.tasks import image_classification as ic_task

from gsa_keras import checkpoints
from gsa_keras import runs
from gsa_keras import train
from gsa_keras.data import digits
from tests.support import shared_runs
from tests.support import training

# A small, fast run: 10 steps in loops of 2, a checkpoint after every loop.
_SHORT_RUN = {
    "task": {"model": {"backbone": {"gsa_resnet": {"attention_groups": [3, 4]}}},
             "train_data": {"global_batch_size": 16}},
    "trainer": {"train_steps": 10, "steps_per_loop": 2, "checkpoint_interval": 2,
                "summary_interval": 2, "validation_interval": 10},
}


@pytest.fixture(autouse=True)
def digits_dir(tmp_path, monkeypatch):
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path / "data"))


def _train_short_run(model_dir):
  """The short run, in this process, checked as the entry point checks it."""
  params = runs.load_params("gsa_resnet_digits", params_override=_SHORT_RUN)
  train.preflight(params, "train", model_dir)
  train.train(params, "train", model_dir)  # Async checkpointing asked, as by default.


def _poison_losses(monkeypatch, poisoned_calls):
  """Adds NaN to the training loss at the given calls of `build_losses` (1-based, one
  call per step); returns the list of calls made, so tests can count steps run."""
  calls = []
  build_losses = ic_task.ImageClassificationTask.build_losses

  def poison():
    calls.append(len(calls) + 1)
    return np.float32(np.nan if poisoned_calls(len(calls)) else 0.0)

  def poisoned_build_losses(self, labels, model_outputs, aux_losses=None):
    loss = build_losses(self, labels, model_outputs, aux_losses)
    return loss + tf.numpy_function(poison, [], tf.float32, stateful=True)

  monkeypatch.setattr(ic_task.ImageClassificationTask, "build_losses",
                      poisoned_build_losses)
  return calls


def _finite_checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  for key in reader.get_variable_to_shape_map():
    value = reader.get_tensor(key)
    if np.issubdtype(np.asarray(value).dtype, np.floating):
      assert np.isfinite(value).all(), (prefix, key)
  return int(reader.get_tensor("global_step/.ATTRIBUTES/VARIABLE_VALUE"))


def test_a_nan_loss_restores_the_last_checkpoint_and_training_goes_on(tmp_path,
                                                                     monkeypatch):
  """NaN at step 6: the loop of steps 5-6 ends NaN, the run restores ckpt-4, runs
  steps 5-10 again and finishes, with finite weights: only steps 5-6 were lost."""
  calls = _poison_losses(monkeypatch, lambda call: call == 6)
  model_dir = str(tmp_path / "run")
  _train_short_run(model_dir)
  assert len(calls) == 12  # 10 steps, plus steps 5 and 6 again after the restore.
  assert _finite_checkpoint(tf.train.latest_checkpoint(model_dir)) == 10
  assert _finite_checkpoint(os.path.join(model_dir, "ckpt-4")) == 4


def test_a_loss_that_keeps_blowing_up_stops_with_a_clear_message(tmp_path,
                                                                monkeypatch):
  calls = _poison_losses(monkeypatch, lambda call: call >= 5)
  model_dir = str(tmp_path / "run")
  with pytest.raises(train.LossBlowUpError,
                     match=r"loss blew up \(NaN, or above trainer.loss_upper_bound=100\)"
                     r" 4 times.*recovery_max_trials=3.*latest: .*ckpt-4"):
    _train_short_run(model_dir)
  assert len(calls) == 4 + 4 * 2  # Steps 1-4, then four tries of steps 5-6.
  assert _finite_checkpoint(os.path.join(model_dir, "ckpt-4")) == 4
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-4")


def test_experiments_configure_recovery():
  params = runs.load_params("gsa_resnet_imagenet")
  assert params.trainer.loss_upper_bound == 100.0
  assert params.trainer.recovery_max_trials == 3


# -- Corrupt checkpoints. --------------------------------------------------------------


def _three_checkpoints(directory):
  """ckpt-1..3 of a small model whose weights differ per checkpoint."""
  weights = tf.Variable(tf.zeros([64, 64]))
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(weights=weights, global_step=step), str(directory),
      max_to_keep=5)
  for number in range(1, 4):
    weights.assign(tf.fill([64, 64], float(number)))
    step.assign(number)
    manager.save(checkpoint_number=number)
  return [os.path.join(str(directory), f"ckpt-{n}") for n in range(1, 4)]


def _data_file(prefix):
  return tf.io.gfile.glob(f"{prefix}.data-*")[0]


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "index_missing"])
def test_a_corrupt_latest_checkpoint_is_moved_aside(tmp_path, damage):
  prefixes = _three_checkpoints(tmp_path)
  data = _data_file(prefixes[2])
  if damage == "truncated":
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
  elif damage == "overwritten":
    with open(data, "r+b") as f:
      f.write(b"\x00" * os.path.getsize(data))
  else:
    os.remove(f"{prefixes[2]}.index")
  assert checkpoints.unreadable_reason(prefixes[1]) is None
  assert checkpoints.unreadable_reason(prefixes[2]) is not None
  dropped = checkpoints.drop_corrupt_checkpoints(str(tmp_path))
  assert [prefix for prefix, _ in dropped] == [prefixes[2]]
  assert tf.train.latest_checkpoint(str(tmp_path)) == prefixes[1]
  assert not tf.io.gfile.glob(f"{prefixes[2]}.*")
  assert tf.io.gfile.glob(os.path.join(str(tmp_path), checkpoints.CORRUPT_DIR, "ckpt-3*"))
  # The good ones are untouched, and a second look finds nothing to drop.
  assert float(tf.train.load_variable(prefixes[1], "weights/.ATTRIBUTES/VARIABLE_VALUE")
               [0, 0]) == 2.0
  assert checkpoints.drop_corrupt_checkpoints(str(tmp_path)) == []


def test_when_every_checkpoint_is_corrupt_the_run_starts_over(tmp_path):
  prefixes = _three_checkpoints(tmp_path)
  for prefix in prefixes:
    with open(_data_file(prefix), "r+b") as f:
      f.truncate(10)
  assert len(checkpoints.drop_corrupt_checkpoints(str(tmp_path))) == 3
  assert tf.train.latest_checkpoint(str(tmp_path)) is None


@pytest.mark.slow
def test_training_resumes_from_the_checkpoint_before_a_corrupt_one(short_run, tmp_path):
  """Through the entry point: a copy of the shared 8-step run, ckpt-8's data truncated,
  then a run to 12 steps names the file, resumes from the checkpoint before it and
  finishes."""
  model_dir = shared_runs.copy_of(short_run, tmp_path)
  flags = f"--params_override={shared_runs.SHORT_RUN_OVERRIDES},trainer.train_steps={{}}"
  env = training.environment(short_run.data_dir)
  saved = tf.train.get_checkpoint_state(str(model_dir)).all_model_checkpoint_paths
  latest, previous = saved[-1], saved[-2]
  assert latest.endswith("ckpt-8")
  previous_step = training.checkpoint_step(previous)
  data = _data_file(latest)
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 3)
  result = training.run(training.train_command(model_dir, flags.format(12), mode="train"),
                       env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"Checkpoint {latest} is corrupt" in result.stderr
  assert f"resuming from {previous}" in result.stderr
  # Only the steps after the previous checkpoint are lost: training restarts there.
  assert f"step: {previous_step:6d} | training until step 12" in result.stdout, (
      result.stdout[-2000:])
  assert training.checkpoint_step(str(model_dir)) == 12
  assert (model_dir / checkpoints.CORRUPT_DIR / os.path.basename(data)).exists()


# -- An unwritable model_dir. ----------------------------------------------------------


def test_a_file_in_place_of_the_model_dir(tmp_path):
  path = tmp_path / "model_dir"
  path.write_text("not a directory")
  with pytest.raises(ValueError, match=r"--model_dir: .* is a file, not a directory"):
    checkpoints.check_writable(str(path), "--model_dir")
  with pytest.raises(ValueError, match=r"--model_dir: cannot write to"):
    checkpoints.check_writable(str(path / "below_a_file"), "--model_dir")


@pytest.fixture
def immutable_dir(tmp_path):
  """A directory nobody may write into, root included (`chattr +i`)."""
  locked = tmp_path / "locked"
  locked.mkdir()
  if subprocess.run(["chattr", "+i", str(locked)], capture_output=True,
                    check=False).returncode:
    pytest.skip("chattr +i is not available on this file system")
  yield locked
  subprocess.run(["chattr", "-i", str(locked)], check=True)


def test_an_unwritable_model_dir_fails_before_any_model_is_built(tmp_path, immutable_dir):
  model_dir = immutable_dir / "run"
  result = training.run(training.train_command(model_dir),
                       training.environment(tmp_path / "data"), timeout=300)
  assert result.returncode == 1, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(f"gsa_keras.train: error: --model_dir: cannot write to "
                         f"'{model_dir}'"), last
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "data").exists()  # Failed before even writing the data.
