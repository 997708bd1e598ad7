"""`gsa_keras.train` refuses a bad config before training, naming the field or path."""

import textwrap

import pytest

from official.core import exp_factory

from gsa_keras import train
from gsa_keras.data import digits
from tests.support import training


class Flags:
  """The Model Garden flags `train.parse_and_check` reads."""

  def __init__(self, config_file=None, params_override=None, tpu=None,
               experiment="gsa_resnet_digits", mode="train_and_eval",
               model_dir="/tmp/unused"):
    self.experiment = experiment
    self.model_dir = model_dir
    self.config_file = [str(config_file)] if config_file else None
    self.params_override = params_override
    self.tpu = tpu
    self.mode = mode
    self.tf_data_service = None

  def __contains__(self, name):
    return hasattr(self, name)


@pytest.fixture(autouse=True)
def digits_dir(tmp_path, monkeypatch):
  monkeypatch.setenv(digits.DATA_DIR_ENV, str(tmp_path / "data"))
  return tmp_path / "data"


def write_yaml(tmp_path, text):
  path = tmp_path / "bad.yaml"
  path.write_text(textwrap.dedent(text))
  return path


def test_the_digits_yaml_passes(digits_dir):
  params = train.parse_and_check(Flags(training.REPO / training.DIGITS_YAML))
  assert params.task.model.backbone.gsa_resnet.model_id == 26
  assert (digits_dir / "digits" / "digits-train.tfrecord").exists()


def test_unknown_key_names_it(tmp_path):
  path = write_yaml(tmp_path, """\
      task:
        model:
          backbone:
            gsa_resnet:
              num_head: 8
      """)
  with pytest.raises(ValueError, match="--config_file/--params_override: .*num_head"):
    train.parse_and_check(Flags(path))


def test_wrong_type_names_the_field(tmp_path):
  path = write_yaml(tmp_path, """\
      trainer:
        train_steps: many
      """)
  with pytest.raises(TypeError, match=r"`trainer\.train_steps` must be int.*'many'"):
    train.parse_and_check(Flags(path))


def test_wrong_backbone_value_names_the_field(tmp_path):
  path = write_yaml(tmp_path, """\
      task:
        model:
          backbone:
            gsa_resnet:
              attention_variant: diagonal
      """)
  with pytest.raises(ValueError, match=r"gsa_resnet.*attention_variant.*diagonal"):
    train.parse_and_check(Flags(path))


def test_no_data_source_names_the_field(tmp_path):
  path = write_yaml(tmp_path, """\
      task:
        validation_data:
          input_path: ''
      """)
  with pytest.raises(ValueError, match=r"task\.validation_data\.input_path"):
    train.parse_and_check(Flags(path))


def test_missing_data_file_names_the_path(tmp_path):
  path = write_yaml(tmp_path, f"""\
      task:
        train_data:
          input_path: {tmp_path}/imagenet/train-*
      """)
  with pytest.raises(FileNotFoundError,
                     match=r"task\.train_data\.input_path.*imagenet"):
    train.parse_and_check(Flags(path))


def test_missing_init_checkpoint_names_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"task\.init_checkpoint.*nowhere"):
    train.parse_and_check(
        Flags(params_override=f"task.init_checkpoint={tmp_path}/nowhere"))


def test_finetuning_without_checkpoint_is_refused():
  with pytest.raises(ValueError, match=r"task\.init_checkpoint` is empty"):
    train.parse_and_check(
        Flags(params_override="task.init_checkpoint_modules=backbone"))


def test_tpu_config_without_tpu_names_the_flag(tmp_path):
  imagenet = training.REPO / "official_configs/imagenet/gsa_resnet50_tpu.yaml"
  with pytest.raises(ValueError, match="--tpu"):
    train.parse_and_check(Flags(imagenet, experiment="gsa_resnet_imagenet",
                                mode="train_and_eval"))


def test_eval_without_checkpoint_names_the_model_dir(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"--model_dir={tmp_path}"):
    train.parse_and_check(Flags(mode="eval", model_dir=str(tmp_path)))


def test_tpu_from_yaml_is_kept_unless_the_flag_is_given(tmp_path):
  path = write_yaml(tmp_path, """\
      runtime:
        tpu: my-tpu
      """)
  assert train.parse_and_check(Flags(path)).runtime.tpu == "my-tpu"
  assert train.parse_and_check(Flags(path, tpu="other")).runtime.tpu == "other"


def test_command_line_fails_before_training(tmp_path):
  """Through the real entry point: non-zero exit, the field named, nothing trained."""
  path = write_yaml(tmp_path, """\
      task:
        losses:
          label_smoothing: lots
      """)
  model_dir = tmp_path / "model"
  result = training.run(
      training.train_command(model_dir, f"--config_file={path}"),
      training.environment(tmp_path / "data"), timeout=300)
  assert result.returncode != 0
  assert "gsa_keras.train: error: `task.losses.label_smoothing` must be float" in (
      result.stderr)
  assert not model_dir.exists()


def test_experiment_defaults_match_the_digits_yaml():
  """The YAML restates the experiment: loading it changes nothing that matters."""
  default = exp_factory.get_exp_config("gsa_resnet_digits")
  loaded = train.parse_and_check(Flags(training.REPO / training.DIGITS_YAML))
  expected = default.as_dict()
  expected["runtime"]["mixed_precision_dtype"] = "float32"
  assert loaded.as_dict() == expected
