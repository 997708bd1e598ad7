"""The registered experiments and every YAML in official_configs/ (issue 4).

Each YAML is loaded the way `gsa_keras.train` loads it (strict override: unknown keys
fail), validated, and its model is built, so no file can rot.
"""

import os
import pathlib
import re

import pytest

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams

from gsa_keras import registry_imports  # pylint: disable=unused-import
from gsa_keras.configs import experiments

REPO = pathlib.Path(__file__).resolve().parents[1]
YAMLS = sorted((REPO / "official_configs").rglob("*.yaml"))
EXPERIMENTS = ("gsa_resnet_imagenet", "gsa_resnet_cifar100_finetune",
               "gsa_resnet_digits")
HEADER_KEYS = ("Experiment", "Reproduces", "Paper")


def header(path):
  """The `# Key: value` lines at the top of a YAML file."""
  fields = {}
  for line in path.read_text().splitlines():
    match = re.match(r"# (\w+): (.*)", line)
    if match:
      fields.setdefault(match.group(1), match.group(2).strip())
  return fields


def load(path):
  params = exp_factory.get_exp_config(header(path)["Experiment"])
  params = hyperparams.override_params_dict(params, str(path), is_strict=True)
  params.validate()
  return params


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_is_registered_and_valid(name):
  params = exp_factory.get_exp_config(name)
  params.validate()
  assert isinstance(params, experiments.GSAExperimentConfig)
  assert params.task.model.backbone.type == "gsa_resnet"
  assert task_factory.get_task_cls(type(params.task)) is not None


def test_imagenet_follows_section_4():
  params = exp_factory.get_exp_config("gsa_resnet_imagenet")
  task, trainer = params.task, params.trainer
  assert task.model.input_size == [224, 224, 3]
  assert task.model.backbone.gsa_resnet.model_id == 50
  assert task.model.backbone.gsa_resnet.num_heads == 8
  assert task.train_data.global_batch_size == 2048
  assert trainer.train_steps == 90 * (1_281_167 // 2048)
  sgd = trainer.optimizer_config.optimizer
  assert (sgd.type, sgd.sgd.momentum) == ("sgd", 0.9)
  lr = trainer.optimizer_config.learning_rate
  assert lr.type == "cosine"
  assert lr.cosine.initial_learning_rate == pytest.approx(0.1 * 2048 / 256)
  assert lr.cosine.decay_steps == trainer.train_steps
  assert trainer.optimizer_config.warmup.type is None
  assert task.losses.l2_weight_decay == 1e-4
  assert task.losses.label_smoothing == 0.1
  assert task.train_data.aug_crop and task.train_data.aug_rand_hflip
  assert task.validation_data.center_crop_fraction == 0.875
  assert params.runtime.distribution_strategy == "tpu"
  assert params.runtime.mixed_precision_dtype == "bfloat16"
  assert trainer.validation_steps * task.validation_data.global_batch_size == 50_000


def test_cifar100_follows_appendix_a():
  params = exp_factory.get_exp_config("gsa_resnet_cifar100_finetune")
  task, trainer = params.task, params.trainer
  assert task.init_checkpoint_modules == "backbone"
  assert task.model.num_classes == 100
  assert task.model.input_size == [224, 224, 3]
  assert task.train_data.global_batch_size == 128
  assert trainer.train_steps == 10_000
  assert trainer.optimizer_config.optimizer.sgd.momentum == 0.9
  stepwise = trainer.optimizer_config.learning_rate.stepwise
  assert stepwise.boundaries == [3000, 6000, 9000]
  assert stepwise.values == pytest.approx([5e-3, 5e-4, 5e-5, 5e-6])
  assert task.losses.l2_weight_decay == 1e-4
  assert trainer.validation_steps * task.validation_data.global_batch_size == 10_000


def test_every_config_dir_has_yamls():
  folders = {path.relative_to(REPO / "official_configs").parts[0] for path in YAMLS}
  assert folders == {"imagenet", "cifar100", "digits"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_names_its_row_and_loads_strictly(path):
  fields = header(path)
  for key in HEADER_KEYS:
    assert fields.get(key), f"{path.name} lacks a '# {key}:' comment line"
  assert fields["Experiment"] in EXPERIMENTS
  load(path)


_BUILT = {}


@pytest.mark.slow
@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_builds_its_model(path):
  """Builds each distinct model once (CIFAR-100 files reuse the ImageNet backbones)."""
  params = load(path)
  model_config = params.task.model
  key = repr((model_config.backbone.as_dict(), model_config.input_size))
  if key not in _BUILT:
    model = task_factory.get_task(params.task).build_model()
    _BUILT[key] = model.backbone.count_params()
  assert _BUILT[key] > 0


def test_conv_baselines_have_no_attention():
  for path in YAMLS:
    if os.path.basename(path).startswith("resnet"):
      assert load(path).task.model.backbone.gsa_resnet.attention_groups == []


@pytest.mark.parametrize(
    "path", [p for p in YAMLS if "Pretrained" in header(p)],
    ids=lambda p: p.name)
def test_finetuning_backbone_matches_its_pretrained_run(path):
  """`init_checkpoint_modules: backbone` needs the very backbone that was pretrained."""
  pretrained = REPO / header(path)["Pretrained"]
  finetune, imagenet = load(path), load(pretrained)
  assert finetune.task.init_checkpoint_modules == "backbone"
  assert (finetune.task.model.backbone.as_dict() ==
          imagenet.task.model.backbone.as_dict())
  assert finetune.task.model.input_size == imagenet.task.model.input_size
