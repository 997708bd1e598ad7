"""Trains and evaluates GSA networks: the Model Garden vision driver plus our registry.

  python -m gsa_keras.train --experiment=gsa_resnet_digits --mode=train_and_eval \
      --model_dir=/tmp/gsa_digits

Flags are the Model Garden's (`--experiment`, `--config_file`, `--params_override`,
`--mode`, `--model_dir`, `--tpu`, ...). Checkpoints, `params.yaml` and TensorBoard
summaries go to `--model_dir`; a run started again with the same command resumes
from the latest checkpoint there. The strategy comes from
`runtime.distribution_strategy`: 'tpu' (TPUStrategy, also on pods),
'multi_worker_mirrored' (across hosts, from `TF_CONFIG`) or 'mirrored'.

Before any model or strategy is built, the config is parsed strictly (unknown keys
fail) and validated (types, data sources, backbone); the built-in digits data is
written if the config reads it; input files, `task.init_checkpoint` and the TPU
setting are checked. Each failure names the field, flag or path.
"""

from absl import app
from absl import flags

from official.common import flags as tfm_flags
from official.core import train_utils
from official.vision import train as vision_train

from gsa_keras import checkpoints
from gsa_keras import registry_imports  # pylint: disable=unused-import
from gsa_keras.data import inputs

FLAGS = flags.FLAGS


class ExperimentParser(train_utils.ExperimentParser):
  """The Model Garden parser, except that `runtime.tpu` from a YAML file is kept
  unless `--tpu` is given (the stock parser overwrites it with the flag's None)."""

  def parse_runtime(self, params):
    if self._flags_obj.tpu is None:
      return params
    return super().parse_runtime(params)


def preflight(params, mode: str, model_dir: str) -> None:
  """Checks what the run needs from outside its config; raises naming the setting."""
  inputs.prepare(params.task, mode)
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
  params = ExperimentParser(flags_obj).parse()
  params.validate()
  preflight(params, flags_obj.mode, flags_obj.model_dir)
  return params


def main(argv):
  try:
    params = parse_and_check(FLAGS)
  except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    raise SystemExit(f"gsa_keras.train: error: {message}") from None
  if FLAGS.tpu is None:
    FLAGS.tpu = params.runtime.tpu  # So the stock driver keeps the YAML's TPU.
  vision_train.main(argv)


def run():
  """Console entry point (`gsa-keras-train`)."""
  tfm_flags.define_flags()
  flags.mark_flags_as_required(["experiment", "mode", "model_dir"])
  app.run(main)


if __name__ == "__main__":
  run()
