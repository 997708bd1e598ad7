"""Training on a full disk: one line naming the model_dir, what was written, the space
needed and free; the last whole checkpoint stays the latest; the failed write's
temporary files are removed; the same command resumes once there is space.

Everywhere: a `ResourceExhaustedError` injected into the checkpoint write (TensorFlow's
own text for ENOSPC), in-process. As root: a real tmpfs too small for the next
checkpoint, through the entry point (`small_disk`, skipped with the reason otherwise).
"""

import os
import shutil
import subprocess

import pytest
import tensorflow as tf

from gsa_keras import checkpoints
from gsa_keras import cli
from gsa_keras import compat
from gsa_keras import disk_space
from gsa_keras import runs
from gsa_keras import train
from gsa_keras.data import digits
from tests.support import shared_runs
from tests.support import training as helpers

MB = 1000 * 1000

# 6 steps in loops of 2, a checkpoint after every loop, summaries too.
_RUN = {
    "task": {"model": {"backbone": {"gsa_resnet": {"attention_groups": [4]}}},
             "train_data": {"global_batch_size": 8}},
    "trainer": {"train_steps": 6, "steps_per_loop": 2, "checkpoint_interval": 2,
                "summary_interval": 2, "validation_interval": 6, "max_to_keep": 3},
}


@pytest.fixture(autouse=True)
def digits_dir(tmp_path, monkeypatch):
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path / "data"))


def _params(asynchronous):
  override = {**_RUN, "trainer": dict(_RUN["trainer"])}
  if asynchronous:  # Recovery on makes checkpoint writes synchronous (train.train).
    override["trainer"]["recovery_max_trials"] = -1
  return runs.load_params("gsa_resnet_digits", params_override=override)


def _train(model_dir, asynchronous):
  params = _params(asynchronous)
  train.preflight(params, "train", model_dir)
  train.train(params, "train", model_dir, enable_async_checkpointing=asynchronous)


def _fail_checkpoint_write(monkeypatch, failing_prefix):
  """The checkpoint write whose shard prefix lies under `<failing_prefix>_temp/`
  leaves a partial file there and fails as a full disk does; returns the calls."""
  owner, name = compat.checkpoint_shard_writer()
  save_v2 = getattr(owner, name)
  calls = []

  def full_disk_save_v2(prefix, *args, **kwargs):
    path = prefix.numpy().decode() if hasattr(prefix, "numpy") else str(prefix)
    calls.append(path)
    if os.path.dirname(path) == f"{failing_prefix}_temp":
      partial = f"{path}.data-00000-of-00001.tempstate1234"
      os.makedirs(os.path.dirname(partial), exist_ok=True)
      with open(partial, "wb") as f:
        f.write(b"\0" * 1000)
      raise tf.errors.ResourceExhaustedError(
          None, None, f"{partial}; No space left on device [Op:SaveV2]")
    return save_v2(prefix, *args, **kwargs)

  monkeypatch.setattr(owner, name, full_disk_save_v2)
  return calls


@pytest.mark.parametrize("asynchronous,failing", [(False, 4), (True, 6)])
def test_a_full_disk_at_a_checkpoint_stops_cleanly_and_the_rerun_resumes(
    tmp_path, monkeypatch, caplog, asynchronous, failing):
  """Synchronous writes, ckpt-4 fails: the error comes at once, and the rerun
  resumes. Asynchronous writes, the last checkpoint (ckpt-6) fails: orbit's final
  sync would not raise it (an atexit traceback, exit status 0); the run must still
  fail."""
  model_dir = str(tmp_path / "run")
  prefix = os.path.join(model_dir, f"ckpt-{failing}")
  calls = _fail_checkpoint_write(monkeypatch, prefix)
  free = 3 * MB  # What the disk says is free: under one checkpoint (~7 MB).
  monkeypatch.setattr(disk_space, "free_bytes", lambda directory: free)
  with pytest.raises(disk_space.DiskFullError) as error:
    _train(model_dir, asynchronous)
  assert any(f"ckpt-{failing}_temp" in call for call in calls)
  previous = os.path.join(model_dir, f"ckpt-{failing - 2}")
  size = disk_space.checkpoint_size(previous)
  message = str(error.value)
  assert "\n" not in message
  assert message.startswith(
      f"--model_dir={model_dir}: No space left on device while writing checkpoint "
      f"ckpt-{failing}: it needed {disk_space.format_bytes(size)}, 3.0 MB is free; "
      f"the latest checkpoint is still ckpt-{failing - 2} and"), message
  assert "run the same command again to resume" in message
  # The last whole checkpoint is the latest; the failed write left nothing.
  assert tf.train.latest_checkpoint(model_dir) == previous
  assert checkpoints.unreadable_reason(previous) is None
  assert not tf.io.gfile.glob(f"{prefix}*")
  # Before training, the warning said the checkpoints would not fit (the estimate
  # from the model is that of the checkpoints written, within 2%).
  warnings = [r.getMessage() for r in caplog.records
              if "the run's checkpoints need" in r.getMessage()]
  assert len(warnings) == 1, caplog.text
  estimate = disk_space.estimated_checkpoint_size(
      runs.build_model(_params(asynchronous)), _params(asynchronous).trainer
      .optimizer_config)
  assert abs(estimate - size) < 0.02 * size, (estimate, size)
  assert f"--model_dir={model_dir}: 3.0 MB free, but the run's checkpoints need " \
      f"{disk_space.format_bytes(4 * estimate)} more (max_to_keep=3 + 1" in warnings[0]

  if asynchronous:
    return  # The resumption is the same either way.
  # Space freed: the same run resumes from the last whole checkpoint and finishes.
  monkeypatch.undo()
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path / "data"))
  _train(model_dir, asynchronous)
  assert helpers.checkpoint_step(model_dir) == 6
  assert tf.train.latest_checkpoint(model_dir).endswith("ckpt-6")


def test_the_entry_point_prints_the_one_line():
  """`gsa_keras.train`'s main reports a run's `RUN_ERRORS` as one line, exit 1."""
  with pytest.raises(SystemExit) as stop:
    with cli.command_line_errors("gsa_keras.train", train.RUN_ERRORS):
      raise disk_space.DiskFullError("--model_dir=/x: No space left on device ...")
  assert stop.value.code == (
      "gsa_keras.train: error: --model_dir=/x: No space left on device ...")
  with pytest.raises(tf.errors.ResourceExhaustedError):  # Not ours to shorten.
    with cli.command_line_errors("gsa_keras.train", train.RUN_ERRORS):
      raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")


def test_what_unfinished_writes_leave_is_removed_and_nothing_else(tmp_path):
  variable = tf.Variable(tf.zeros([16]))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), str(tmp_path),
                                       max_to_keep=5)
  for number in (2, 4):
    manager.save(checkpoint_number=number)
  leftovers = [tmp_path / "ckpt-6_temp", tmp_path / "ckpt-6.index",
               tmp_path / "ckpt-6.data-00000-of-00001", tmp_path / "checkpoint.tmp1a2b"]
  leftovers[0].mkdir()
  (leftovers[0] / "part-00000-of-00001.data-00000-of-00001.tempstate99").write_text("x")
  for path in leftovers[1:]:
    path.write_text("partial")
  # A user's files of another name, and older checkpoints, stay.
  kept = [tmp_path / "pretrained-900.index", tmp_path / "notes.txt"]
  for path in kept:
    path.write_text("mine")
  removed = checkpoints.remove_unfinished_writes(str(tmp_path))
  assert removed == sorted(str(path) for path in leftovers)
  assert all(path.exists() for path in kept)
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")
  assert checkpoints.unreadable_reason(str(tmp_path / "ckpt-2")) is None
  assert checkpoints.remove_unfinished_writes(str(tmp_path)) == []


def test_a_full_disk_in_a_summary_is_named():
  """TensorFlow's own message for a summary write on a full tmpfs."""
  model_dir = "/runs/digits"
  error = tf.errors.ResourceExhaustedError(
      None, None, "{{function_node __wrapped__WriteSummary_device_/job:localhost/"
      "replica:0/task:0/device:CPU:0}} /runs/digits/train/events.out.tfevents."
      "1796636257.vm.9035.0.v2; No space left on device\n\tFailed to flush 11 events "
      "to /runs/digits/train/events.out.tfevents.1796636257.vm.9035.0.v2\n\tCould "
      "not flush events file. [Op:WriteSummary]")
  assert disk_space.is_disk_full(error)
  message = disk_space.describe_full_disk(error, model_dir, 67 * MB, 3,
                                          "/runs/digits/ckpt-4")
  assert message.startswith(
      "--model_dir=/runs/digits: No space left on device while writing a summary "
      "(train/events.out.tfevents.1796636257.vm.9035.0.v2): the run needs about "
      "67.0 MB for each further checkpoint, "), message
  assert "the latest checkpoint is still ckpt-4" in message
  assert "(3 kept + 1 being written: 268.0 MB)" in message


def test_only_a_full_disk_or_quota_counts():
  assert not disk_space.is_disk_full(tf.errors.ResourceExhaustedError(
      None, None, "OOM when allocating tensor with shape[64,512,7,7]"))
  assert disk_space.is_disk_full(OSError(122, "Disk quota exceeded"))
  assert disk_space.is_disk_full(tf.errors.ResourceExhaustedError(
      None, None, "/x/params.yaml; Disk quota exceeded"))
  assert not disk_space.is_disk_full(ValueError("No space left on device"))


def test_space_warning_counts_the_checkpoints_already_there(tmp_path, monkeypatch):
  monkeypatch.setattr(disk_space, "free_bytes", lambda directory: 150 * MB)
  warning = disk_space.space_warning(str(tmp_path), 67 * MB, 3, 0)
  assert warning == (
      f"--model_dir={tmp_path}: 150.0 MB free, but the run's checkpoints need "
      "268.0 MB more (max_to_keep=3 + 1 being written, 67.0 MB each); room for 2. "
      "Training may stop when the disk is full: free space, lower "
      "trainer.max_to_keep or use another --model_dir.")
  # Resuming with two kept: two more (the third, and the one being written) fit.
  assert disk_space.space_warning(str(tmp_path), 67 * MB, 3, 2) is None
  assert disk_space.space_warning(str(tmp_path), 67 * MB, 3, 1) is not None
  monkeypatch.undo()  # A remote model_dir: its free space is unknown, no warning.
  assert disk_space.space_warning("gs://bucket/run", 67 * MB, 3, 0) is None


# -- A real full disk (tmpfs, as root). -----------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
  """`mount(size)`: a tmpfs of `size` bytes at a new directory (root only), remounted
  with the new size when called again; unmounted at teardown (lazily if busy)."""
  mount_point = tmp_path / "small_disk"
  mount_point.mkdir()
  if os.geteuid() != 0:
    pytest.skip("mounting a small tmpfs needs root (this runs as uid "
                f"{os.geteuid()}); the injected-error tests cover the logic")
  mounted = []

  def mount(size):
    options = f"size={int(size)}" if not mounted else f"remount,size={int(size)}"
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                             str(mount_point)], capture_output=True, text=True,
                            check=False)
    if result.returncode:
      pytest.skip(f"cannot mount a tmpfs at {mount_point}: {result.stderr.strip()}")
    mounted.append(size)
    return mount_point

  yield mount
  if mounted and subprocess.run(["umount", str(mount_point)], capture_output=True,
                                check=False).returncode:
    # Busy: an in-process run's summary writers keep their files open. Detach it
    # now; the kernel frees it when they are closed.
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


@pytest.mark.slow
def test_a_real_full_disk_in_process(small_disk, tmp_path, caplog):
  """The in-process run on a tmpfs with room for one and a half checkpoints: ckpt-4
  fails for real (ENOSPC), cleanly; after a remount with room, the run resumes."""
  params = _params(asynchronous=False)
  size = disk_space.estimated_checkpoint_size(runs.build_model(params),
                                              params.trainer.optimizer_config)
  disk = small_disk(1.5 * size + 256 * 1024)
  model_dir = str(disk / "run")
  with pytest.raises(disk_space.DiskFullError) as error:
    _train(model_dir, asynchronous=False)
  message = str(error.value)
  assert message.startswith(
      f"--model_dir={model_dir}: No space left on device while writing checkpoint "
      "ckpt-4: it needed "), message
  assert "the latest checkpoint is still ckpt-2" in message
  assert any("the run's checkpoints need" in r.getMessage() for r in caplog.records)
  assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir, "ckpt-2")
  assert sorted(name for name in os.listdir(model_dir) if name.startswith("ckpt")) == [
      "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
  small_disk(5 * size)
  _train(model_dir, asynchronous=False)
  assert helpers.checkpoint_step(model_dir) == 6


def _tree_bytes(directory):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(directory) for name in names)


@pytest.mark.slow
def test_a_real_full_disk_through_the_entry_point(short_run, small_disk, tmp_path):
  """A copy of the shared 8-step run on a tmpfs with room for half a checkpoint more,
  continued to 12 steps: ckpt-12 does not fit. One line, exit status 1, ckpt-8 the
  latest, no ckpt-12_temp/; after a remount with room, the same command finishes."""
  source = shared_runs.copy_of(short_run, tmp_path / "copy")
  size = disk_space.checkpoint_size(tf.train.latest_checkpoint(str(source)))
  disk = small_disk(_tree_bytes(source) + size // 2 + 64 * 1024)
  model_dir = disk / "run"
  shutil.copytree(source, model_dir)
  state = model_dir / "checkpoint"
  state.write_text(state.read_text().replace(str(source), str(model_dir)))
  command = helpers.train_command(
      model_dir, f"--params_override={shared_runs.SHORT_RUN_OVERRIDES},"
      "trainer.train_steps=12", mode="train")
  env = helpers.environment(short_run.data_dir)

  result = helpers.run(command, env)
  assert result.returncode == 1, result.stderr[-3000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith(
      f"gsa_keras.train: error: --model_dir={model_dir}: No space left on device "
      f"while writing checkpoint ckpt-12: it needed {disk_space.format_bytes(size)}, "
      ), last
  assert "the latest checkpoint is still ckpt-8" in last
  assert "Traceback" not in result.stderr
  assert f"--model_dir={model_dir}: " in result.stderr and (
      "free, but the run's checkpoints need" in result.stderr)  # The warning.
  assert tf.train.latest_checkpoint(str(model_dir)) == str(model_dir / "ckpt-8")
  assert not list(model_dir.glob("ckpt-12*"))

  small_disk(_tree_bytes(model_dir) + 3 * size)
  result = helpers.run(command, env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "step:      8 | training until step 12" in result.stdout, result.stdout[-2000:]
  assert helpers.checkpoint_step(str(model_dir)) == 12
