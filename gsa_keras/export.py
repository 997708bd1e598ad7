"""Exports a trained GSA classifier to a SavedModel (and optionally TFLite) for serving.

  python -m gsa_keras.export --experiment=gsa_resnet_digits \
      --config_file=/tmp/gsa_digits/params.yaml --checkpoint_path=/tmp/gsa_digits \
      --export_dir=/tmp/gsa_digits_export --tflite_path=/tmp/gsa_digits.tflite

`--checkpoint_path` is a checkpoint prefix or a training model_dir (its latest
checkpoint). The SavedModel has the signatures `serving_default` (uint8 images),
`image_bytes` (encoded images) and `tf_example` (serialized `tf.train.Example`s), each
returning `logits` and `probs`, with the evaluation preprocessing inside the graph
(`gsa_keras.serving.module`). It loads without gsa_keras: `tf.saved_model.load`,
`saved_model_cli` and TensorFlow Serving. `--precision=bfloat16` makes the SavedModel
compute in bfloat16 from the same float32 checkpoint (faster on CPUs with bfloat16
instructions, slower on others); its signatures still return float32. The TFLite
flatbuffer is float32 whatever `--precision` says.

Each output is written beside its path under a temporary name and renamed into place
only when complete: a failed or killed export leaves an earlier export at
`--export_dir` / `--tflite_path` as it was, never a partial one. An existing
`--export_dir` is replaced whole, so it must be an earlier export or empty.
"""

from absl import app
from absl import flags

from gsa_keras import cli
from gsa_keras import runs
from gsa_keras.serving import export_lib

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("experiment", None,
                      "Registered experiment, e.g. gsa_resnet_digits.")
  flags.DEFINE_multi_string(
      "config_file", None, "YAML overrides of the experiment, in order (e.g. the "
      "training model_dir's params.yaml).")
  flags.DEFINE_string("params_override", "",
                      "YAML/JSON string or file applied after --config_file.")
  flags.DEFINE_string(
      "checkpoint_path", None, "Checkpoint prefix (<model_dir>/ckpt-600) or a "
      "training model_dir (its latest checkpoint).")
  flags.DEFINE_string("export_dir", None, "SavedModel directory.")
  flags.DEFINE_string("tflite_path", None,
                      "Also write a TFLite flatbuffer here (batch: --batch_size, else 1).")
  flags.DEFINE_string(
      "precision", export_lib.serving_module.DEFAULT_PRECISION,
      "What the SavedModel computes in: "
      f"{' or '.join(export_lib.serving_module.PRECISIONS)} (bfloat16: float32 "
      "variables and softmaxes, float32 outputs). --tflite_path is float32 either way.")
  flags.DEFINE_integer("batch_size", None,
                       "Batch size of the SavedModel signatures; unset: any.")
  flags.DEFINE_integer(
      "max_image_pixels", export_lib.serving_module.DEFAULT_MAX_IMAGE_PIXELS,
      "image_bytes and tf_example reject a request whose encoded images declare "
      "more pixels than this (each, and all together) in their headers, before "
      "decoding them.", lower_bound=1)
  flags.mark_flags_as_required(["experiment", "checkpoint_path", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  with cli.command_line_errors("gsa_keras.export"):
    # Everything the user can get wrong, before any model is built.
    params = export_lib.load_params(
        FLAGS.experiment, FLAGS.config_file or (), FLAGS.params_override)
    checkpoint = runs.find_checkpoint(FLAGS.checkpoint_path)
    if FLAGS.batch_size is not None and FLAGS.batch_size < 1:
      raise ValueError(f"--batch_size must be positive or unset, got "
                       f"{FLAGS.batch_size}.")
    export_lib.serving_module.validate_precision(FLAGS.precision, "--precision")
    export_lib.check_target(FLAGS.export_dir, "--export_dir", directory=True)
    if FLAGS.tflite_path:
      export_lib.check_target(FLAGS.tflite_path, "--tflite_path", directory=False)
  module = export_lib.export_saved_model(
      params, checkpoint, FLAGS.export_dir, batch_size=FLAGS.batch_size,
      max_image_pixels=FLAGS.max_image_pixels, precision=FLAGS.precision)
  print(f"SavedModel ({checkpoint}, {FLAGS.precision}): {FLAGS.export_dir}")
  if FLAGS.tflite_path:
    export_lib.export_tflite(module, FLAGS.tflite_path)
    print(f"TFLite (float32): {FLAGS.tflite_path}")


def run():
  """Console entry point (`gsa-keras-export`)."""
  define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
