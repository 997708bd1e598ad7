"""Trains and evaluates GSA networks: the Model Garden's training loop plus our registry.

  python -m gsa_keras.train --experiment=gsa_resnet_digits --mode=train_and_eval \
      --model_dir=/tmp/gsa_digits

Flags are the Model Garden's (`--experiment`, `--config_file`, `--params_override`,
`--mode`, `--model_dir`, `--tpu`, ...). Checkpoints, `params.yaml` and TensorBoard
summaries go to `--model_dir`; a run started again with the same command resumes
from the latest checkpoint there. The strategy comes from
`runtime.distribution_strategy`: 'tpu' (TPUStrategy, also on pods),
'multi_worker_mirrored' (across hosts, from `TF_CONFIG`) or 'mirrored'.

Before any model or strategy is built, the config is parsed once, strictly (unknown
keys fail), and validated (types, data sources, backbone) by `gsa_keras.runs`; the
built-in digits data is written if the config reads it; input files,
`task.init_checkpoint` and the TPU setting are checked. Each failure prints one line
naming the field, flag or path. The config so checked is the one that trains.

A full disk (or quota) while writing a checkpoint, summary or `params.yaml` ends the
run with one line naming the model_dir, what was being written, the space it needed
and the space free (`gsa_keras.disk_space`); the failed write's temporary files are
removed, the last whole checkpoint stays the latest, and the same command resumes
from it once space is freed. Before training, a warning says if the model_dir lacks
room for `trainer.max_to_keep + 1` checkpoints.
"""

from absl import app
from absl import flags
from absl import logging
import gin
import orbit
import tensorflow as tf

from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance
from official.vision.utils import summary_manager

from gsa_keras import checkpoints
from gsa_keras import cli
from gsa_keras import compat
from gsa_keras import disk_space
from gsa_keras import runs
from gsa_keras.data import inputs

FLAGS = flags.FLAGS
flags.DEFINE_bool("enable_async_checkpointing", True,
                  "Write checkpoints asynchronously (as `official.vision.train`); "
                  "ignored while loss blow-up recovery is on "
                  "(trainer.recovery_max_trials >= 0), which needs synchronous ones.")


def preflight(params, mode: str, model_dir: str) -> None:
  """Checks what the run needs from outside its config; raises naming the setting.

  Also moves the run's newest unreadable checkpoints aside (a preemption while
  writing), with a warning naming them, so that the run resumes from the newest whole
  one (`checkpoints.drop_corrupt_checkpoints`), and, for training, removes what
  unfinished checkpoint writes left (`checkpoints.remove_unfinished_writes`).
  """
  checkpoints.check_writable(model_dir, "--model_dir")
  inputs.prepare(params.task, mode)
  checkpoints.drop_corrupt_checkpoints(model_dir)
  if "train" in mode:
    checkpoints.remove_unfinished_writes(model_dir)
  if mode == "eval":
    checkpoints.find_checkpoint(model_dir, f"--model_dir={model_dir} (--mode=eval)")
  if "train" in mode:
    task = params.task
    if task.init_checkpoint:
      checkpoints.find_checkpoint(task.init_checkpoint, "`task.init_checkpoint`")
    if task.init_checkpoint_modules == "backbone" and not task.init_checkpoint:
      raise ValueError(
          "`task.init_checkpoint_modules` is 'backbone' (fine-tuning) but "
          "`task.init_checkpoint` is empty: set it to the pretrained run's "
          "model_dir or checkpoint.")
  if params.runtime.distribution_strategy == "tpu" and params.runtime.tpu is None:
    raise ValueError(
        "`runtime.distribution_strategy` is 'tpu' but no TPU is set: pass "
        "--tpu=<TPU name> (or --tpu=local on a TPU VM).")


def parse_and_check(flags_obj):
  """The experiment config from the flags, validated and pre-flight checked."""
  params = runs.load_params(
      flags_obj.experiment, flags_obj.config_file or (), flags_obj.params_override,
      tpu=flags_obj.tpu, tf_data_service=getattr(flags_obj, "tf_data_service", None))
  preflight(params, flags_obj.mode, flags_obj.model_dir)
  return params


class LossBlowUpError(RuntimeError):
  """The loss stayed NaN or above `trainer.loss_upper_bound` through every restore."""


# What `main` reports as one line: the failures of a run that are not bugs.
RUN_ERRORS = (LossBlowUpError, disk_space.DiskFullError)


def _checkpoint_bytes(model_dir: str, model, optimizer_config):
  """The size of one checkpoint: the latest one's in `model_dir`, else an estimate
  from the model (`disk_space.estimated_checkpoint_size`); None if neither."""
  latest = tf.train.latest_checkpoint(model_dir)
  if latest:
    return disk_space.checkpoint_size(latest)
  if model is None:
    return None
  return disk_space.estimated_checkpoint_size(model, optimizer_config)


def _controller_class(params, model_dir: str, made: list):
  """orbit.Controller, adding what training needs for a full disk.

  Each controller made is appended to `made` (for `_settle_async_saves`). Before
  training, one made with a trainer warns when `model_dir` lacks the space of
  `max_to_keep + 1` checkpoints (`disk_space.space_warning`, which says why a warning
  and not an error).
  """

  class Controller(orbit.Controller):
    """orbit.Controller that checks the disk before training."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      made.append(self)
      if self.trainer is not None and self.checkpoint_manager is not None:
        state = tf.train.get_checkpoint_state(model_dir)
        size = _checkpoint_bytes(model_dir, getattr(self.trainer, "model", None),
                                 params.trainer.optimizer_config)
        warning = size and disk_space.space_warning(
            model_dir, size, params.trainer.max_to_keep,
            len(state.all_model_checkpoint_paths) if state else 0)
        if warning:
          logging.warning("%s", warning)

  return Controller


def _settle_async_saves(controllers):
  """Waits for every controller's asynchronous checkpoint write; the errors of those
  that failed (cleared, so that they are not raised again at exit)."""
  errors = (compat.async_checkpoint_error(getattr(controller.checkpoint_manager,
                                                  "checkpoint", None))
            for controller in controllers)
  return [error for error in errors if error is not None]


def _disk_full_error(error, params, mode: str, model_dir: str, controllers):
  """The `DiskFullError` for a write into `model_dir` that ran out of space, after
  removing what the failed write left (training only: an evaluation job must not
  touch the files of a checkpoint that a training job is writing)."""
  if "train" in mode:
    checkpoints.remove_unfinished_writes(model_dir)
  trainer = controllers[0].trainer if controllers else None
  size = _checkpoint_bytes(model_dir, getattr(trainer, "model", None),
                           params.trainer.optimizer_config)
  return disk_space.DiskFullError(disk_space.describe_full_disk(
      error, model_dir, size, params.trainer.max_to_keep,
      tf.train.latest_checkpoint(model_dir)))


def train(params, mode: str, model_dir: str,
          enable_async_checkpointing: bool = True) -> None:
  """Runs the Model Garden's training loop (`train_lib.run_experiment`) on `params`.

  What `official.vision.train` does after parsing its flags: writes `params.yaml`
  (training modes), sets the mixed precision policy, builds the strategy and the task.
  A NaN loss, or one above `trainer.loss_upper_bound`, restores the latest checkpoint
  and training goes on (the Model Garden's recovery). Before training, a warning says
  if `model_dir` lacks room for `max_to_keep + 1` checkpoints.

  Raises:
    LossBlowUpError: the loss blew up more than `trainer.recovery_max_trials` times.
    DiskFullError: a checkpoint, summary or config write into `model_dir` ran out of
      space (or quota). What the failed write left is removed and the latest
      checkpoint is the last whole one, so the same command resumes once space is
      freed.
  """
  controllers = []
  try:
    _train(params, mode, model_dir, enable_async_checkpointing, controllers)
    # orbit waits for the last asynchronous checkpoint write but does not raise its
    # error, which would leave a failed last checkpoint to an `atexit` traceback and
    # exit status 0.
    failed = _settle_async_saves(controllers)
    for error in failed[1:]:
      logging.error("An asynchronous checkpoint write failed too: %s", error)
    if failed:
      raise failed[0]
  except Exception as e:
    # Wait for a checkpoint still being written, before looking at the files.
    pending = _settle_async_saves(controllers)
    full = [error for error in [e] + pending if disk_space.is_disk_full(error)]
    if not full:
      for error in pending:
        logging.error("An asynchronous checkpoint write failed too: %s", error)
      raise
    raise _disk_full_error(full[0], params, mode, model_dir, controllers) from e


def _train(params, mode, model_dir, enable_async_checkpointing, controllers):
  """`train`, appending the orbit controllers it makes to `controllers`."""
  if "train" in mode:
    # Pure evaluation writes no params.yaml, so it cannot race a training job's.
    train_utils.serialize_config(params, model_dir)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus, tpu_address=params.runtime.tpu)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  if params.trainer.recovery_max_trials >= 0:
    # TF's CheckpointManager does not see checkpoints written asynchronously
    # (`restore_or_initialize` returns None: its own TODO), so with async saves the
    # Model Garden's recovery would restore nothing and train on from the blown-up
    # weights. Checkpoints are written synchronously while recovery is on.
    enable_async_checkpointing = False
  try:
    train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode=mode, params=params,
        model_dir=model_dir,
        eval_summary_manager=summary_manager.maybe_build_eval_summary_manager(
            params=params, model_dir=model_dir),
        enable_async_checkpointing=enable_async_checkpointing,
        controller_cls=_controller_class(params, model_dir, controllers))
  except RuntimeError as e:
    if not compat.is_loss_blow_up(e):
      raise
    trainer = params.trainer
    raise LossBlowUpError(
        f"training stopped: the loss blew up (NaN, or above trainer.loss_upper_bound="
        f"{trainer.loss_upper_bound:g}) {trainer.recovery_max_trials + 1} times, each "
        f"time restored from the latest checkpoint (trainer.recovery_max_trials="
        f"{trainer.recovery_max_trials}). The checkpoints are intact (latest: "
        f"{tf.train.latest_checkpoint(model_dir)}); lower the learning rate or check "
        f"the data, then run again to resume. ({e})") from None


def main(argv):
  del argv
  gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_params)
  with cli.command_line_errors("gsa_keras.train"):
    params = parse_and_check(FLAGS)
  with cli.command_line_errors("gsa_keras.train", RUN_ERRORS):
    train(params, FLAGS.mode, FLAGS.model_dir, FLAGS.enable_async_checkpointing)
  train_utils.save_gin_config(FLAGS.mode, FLAGS.model_dir)


def run():
  """Console entry point (`gsa-keras-train`)."""
  tfm_flags.define_flags()
  flags.mark_flags_as_required(["experiment", "mode", "model_dir"])
  app.run(main)


if __name__ == "__main__":
  run()
