"""The registered experiments (`gsa_keras.configs.experiments`) and every YAML in
official_configs/.

Each YAML is loaded the way `gsa_keras.train` loads it (strict override: unknown keys
fail), validated, and its model is built, so no file can rot. A YAML that reproduces a
network of the paper must be that network of `gsa_keras.paper`, quote its numbers, and
build a backbone with its exact parameter count.

The recipes live in the registered experiments; a YAML holds only what its row changes,
usually the backbone, so a recipe is changed in one place. A key whose value is the
experiment's default fails unless the file says why it repeats it, with
`# repeats the default: <reason>` on the key or on a key above it. The defaults compared
are the experiments' before any file or flag (`--tpu` sets `runtime.tpu` after the files).
"""

import math
import os
import re
import textwrap

import pytest

from official.core import exp_factory
from official.core import task_factory

from gsa_keras import paper
from gsa_keras import registry_imports
from gsa_keras.configs import backbones
from gsa_keras.configs import experiments
from tests.support import experiment_configs
from tests.support import training

REPO = training.REPO
YAMLS = experiment_configs.YAMLS
EXPERIMENTS = experiment_configs.EXPERIMENTS
HEADER_KEYS = ("Experiment", "Reproduces", "Paper")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_is_registered_and_valid(name):
  params = exp_factory.get_exp_config(name)
  params.validate()
  assert isinstance(params, experiments.GSAExperimentConfig)
  assert params.task.model.backbone.type == ("san" if name == "san_imagenet"
                                             else "gsa_resnet")
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
  assert folders == {"imagenet", "cifar100", "digits", "fashion_mnist"}


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_names_its_row_and_loads_strictly(path):
  fields = experiment_configs.header(path)
  for key in HEADER_KEYS:
    assert fields.get(key), f"{path.name} lacks a '# {key}:' comment line"
  assert fields["Experiment"] in EXPERIMENTS
  experiment_configs.load(path)


# The experiments whose YAMLs reproduce a network of the paper (`gsa_keras.paper`).
PAPER_EXPERIMENTS = ("gsa_resnet_imagenet", "gsa_resnet_cifar100_finetune")
PAPER_YAMLS = [p for p in YAMLS
               if experiment_configs.header(p)["Experiment"] in PAPER_EXPERIMENTS]
_NETWORK_FIELDS = ("model_id", "width_variant", "attention_groups", "attention_variant")


def _network_fields(backbone_fields):
  return {key: backbone_fields[key] for key in _NETWORK_FIELDS}


def paper_network(path):
  """The one network of the paper's tables that the YAML's backbone is."""
  backbone = experiment_configs.load(path).task.model.backbone
  fields = _network_fields(backbone.gsa_resnet.as_dict())
  matches = [n for n in paper.NETWORKS if _network_fields(
      backbones.GSAResNet(**n.config_fields()).as_dict()) == fields]
  assert len(matches) == 1, (path.name, fields, [n.name for n in matches])
  return matches[0]


def _header_text(path):
  return " ".join(line.lstrip("# ") for line in path.read_text().splitlines()
                  if line.startswith("#"))


@pytest.mark.parametrize("path", PAPER_YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_header_quotes_the_papers_numbers(path):
  """The numbers in a YAML's header are its network's in `gsa_keras.paper`."""
  network, text = paper_network(path), _header_text(path)
  if experiment_configs.header(path)["Experiment"] == "gsa_resnet_cifar100_finetune":
    expected = [f"CIFAR-100 top-1 {network.cifar100_top1}%"]
  else:
    expected = [f"top-1 {network.top1}%"]
    if network.top5 is not None:  # Table 3 gives no top-5 for the local baseline.
      expected.append(f"top-5 {network.top5}%")
    if network.params_m is not None:
      expected += [f"{network.params_m}M params", f"{network.gflops} GFLOPs"]
  for number in expected:
    assert number in text, (path.name, number)
  for runtime in re.findall(r"([\d.]+) ms", text):
    assert float(runtime) == network.runtime_ms, path.name


def test_every_paper_network_has_an_imagenet_yaml():
  imagenet = {paper_network(p).name for p in PAPER_YAMLS
              if experiment_configs.header(p)["Experiment"] == "gsa_resnet_imagenet"}
  assert imagenet == set(paper.BY_NAME)


# Exact trainable parameters of each paper network's backbone at 224x224, without the
# head (`python -m gsa_keras.flops` counts them with it); the digits default's at
# 32x32 (its relative embeddings are sized by the feature maps).
BACKBONE_PARAMS = {
    "ResNet-38": 17_577_792,
    "GSA-ResNet-38": 12_153_728,
    "ResNet-50": 23_508_032,
    "GSA-ResNet-50": 16_003_856,
    "ResNet-101": 42_500_160,
    "GSA-ResNet-101": 28_349_392,
    "GSA-M-ResNet-50": 11_675_826,
    "Axial-ResNet-50": 16_003_856,
    "Local-ResNet-50": 15_966_504,
    "Positional-ResNet-50": 14_746_384,
    "Content-Column-ResNet-50": 15_979_752,
    "Content-Row-ResNet-50": 15_979_752,
    "Column-ResNet-50": 14_722_280,
    "Row-ResNet-50": 14_722_280,
    "Content-ResNet-50": 15_963_200,
    "GSA-ResNet-50, groups 2-4": 16_071_872,
    "GSA-ResNet-50, groups 3-4": 16_455_232,
    "GSA-ResNet-50, group 4": 18_799_296,
}
DIGITS_YAML = "digits/gsa_resnet26_cpu.yaml"
DIGITS_BACKBONE_PARAMS = 8_286_704
_BUILT = {}


def _trainable_params(layer):
  return sum(math.prod(w.shape) for w in layer.trainable_weights)


@pytest.mark.slow
@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_builds_its_model(path):
  """Builds each distinct model once (CIFAR-100 files reuse the ImageNet backbones)."""
  params = experiment_configs.load(path)
  model_config = params.task.model
  key = repr((model_config.backbone.as_dict(), model_config.input_size))
  if key not in _BUILT:
    model = task_factory.get_task(params.task).build_model()
    backbone_params = _trainable_params(model.backbone)
    # The rest is the dense head on the pooled last endpoint.
    assert _trainable_params(model) - backbone_params == (
        model.backbone.output_specs["5"][-1] + 1) * model_config.num_classes
    _BUILT[key] = backbone_params, model.backbone.output_specs["5"][-1]
  backbone_params, features = _BUILT[key]
  model_params = backbone_params + (features + 1) * model_config.num_classes
  if path in PAPER_YAMLS:
    network = paper_network(path)
    assert backbone_params == BACKBONE_PARAMS[network.name]
    if network.params_m is not None and model_config.num_classes == 1000:
      # The paper counts the 1000-class head; test_flops checks every network so.
      assert abs(model_params / 1e6 / network.params_m - 1) <= 0.02, (
          model_params, network.params_m)
  elif str(path.relative_to(REPO / "official_configs")) == DIGITS_YAML:
    assert backbone_params == DIGITS_BACKBONE_PARAMS


def test_conv_baselines_have_no_attention():
  for path in YAMLS:
    if os.path.basename(path).startswith("resnet"):
      backbone = experiment_configs.load(path).task.model.backbone
      assert backbone.gsa_resnet.attention_groups == []


@pytest.mark.parametrize(
    "path", [p for p in YAMLS if "Pretrained" in experiment_configs.header(p)],
    ids=lambda p: p.name)
def test_finetuning_backbone_matches_its_pretrained_run(path):
  """`init_checkpoint_modules: backbone` needs the very backbone that was pretrained."""
  pretrained = REPO / experiment_configs.header(path)["Pretrained"]
  finetune, imagenet = experiment_configs.load(path), experiment_configs.load(pretrained)
  assert finetune.task.init_checkpoint_modules == "backbone"
  assert (finetune.task.model.backbone.as_dict() ==
          imagenet.task.model.backbone.as_dict())
  assert finetune.task.model.input_size == imagenet.task.model.input_size


# Overrides only: the registered experiments hold the recipes.
ONLY_THE_BACKBONE = "this file changes only the backbone"


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_holds_only_what_differs_from_its_experiment(path):
  problems = experiment_configs.override_problems(path)
  assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path", [p for p in YAMLS if ONLY_THE_BACKBONE in _header_text(p)],
    ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_that_says_so_changes_only_the_backbone(path):
  changed = [o.key for o in experiment_configs.overrides(path) if not o.repeats_default]
  assert all(key.startswith("task.model.backbone.") for key in changed), changed


def test_every_paper_row_says_it_changes_only_the_backbone():
  """The ImageNet, CIFAR-100 and Fashion-MNIST rows share their experiment's recipe."""
  rows = [p for p in YAMLS if p.relative_to(REPO / "official_configs").parts[0]
          in ("imagenet", "cifar100", "fashion_mnist")]
  assert rows and all(ONLY_THE_BACKBONE in _header_text(p) for p in rows)


def _yaml(tmp_path, body, experiment="gsa_resnet_imagenet"):
  path = tmp_path / "row.yaml"
  path.write_text(f"# Experiment: {experiment}\n" + textwrap.dedent(body))
  return path


def test_a_key_that_repeats_the_default_fails(tmp_path):
  path = _yaml(tmp_path, """\
      task:
        model:
          backbone:
            gsa_resnet:
              model_id: 101
              num_heads: 8
        losses:
          l2_weight_decay: 0.0001
      """)
  problems = experiment_configs.override_problems(path)
  assert len(problems) == 2, problems
  assert re.match(r"row\.yaml:7: task\.model\.backbone\.gsa_resnet\.num_heads: 8 is "
                  r"the experiment's default", problems[0])
  assert "task.losses.l2_weight_decay: 0.0001" in problems[1]  # 1e-4 in Python.


def test_values_are_compared_as_the_config_reads_them(tmp_path):
  """A list repeats a tuple default, an int a float one; runtime keys count too."""
  path = _yaml(tmp_path, """\
      runtime:
        distribution_strategy: tpu
        mixed_precision_dtype: bfloat16
      task:
        model:
          input_size: [224, 224, 3]
        train_data:
          crop_area_range: [0.08, 1]
      """)
  assert [o.key for o in experiment_configs.overrides(path) if o.repeats_default] == [
      "runtime.distribution_strategy", "runtime.mixed_precision_dtype",
      "task.model.input_size", "task.train_data.crop_area_range"]


def test_a_repeated_default_with_a_reason_passes(tmp_path):
  """The reason is on the key's line or above it; on a mapping it covers the keys below."""
  path = _yaml(tmp_path, """\
      trainer:
        # repeats the default: the row is defined by its step count.
        train_steps: 56250
        optimizer_config:  # repeats the default: the paper's schedule, spelled out.
          learning_rate:
            type: cosine
            cosine:
              decay_steps: 56250
      """)
  assert experiment_configs.override_problems(path) == []
  reasons = {o.key: o.reason for o in experiment_configs.overrides(path)}
  assert reasons["trainer.train_steps"] == "the row is defined by its step count."
  assert reasons["trainer.optimizer_config.learning_rate.cosine.decay_steps"] == (
      "the paper's schedule, spelled out.")


def test_a_marker_needs_a_reason(tmp_path):
  path = _yaml(tmp_path, """\
      trainer:
        train_steps: 56250  # repeats the default:
      """)
  (problem,) = experiment_configs.override_problems(path)
  assert "the comment has no reason" in problem


def test_a_marker_on_a_key_that_differs_fails(tmp_path):
  path = _yaml(tmp_path, """\
      trainer:
        train_steps: 1000  # repeats the default: it does not.
      """)
  (problem,) = experiment_configs.override_problems(path)
  assert "is not the default" in problem


def test_a_yaml_with_nothing_to_override(tmp_path):
  assert experiment_configs.overrides(_yaml(tmp_path, "{}\n")) == []
