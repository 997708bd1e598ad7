"""The operator registry: every operator registered once, and a new one needs no other file.

A toy operator (a 3x3 depthwise convolution) registered inside a test is usable from a
Model Garden YAML, from the Keras models, from the FLOP counter's command and from a
study arm, without a change anywhere else.
"""

import pathlib
import re
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams

from gsa_keras import flops
from gsa_keras import operators
from gsa_keras import paper
from gsa_keras import registry_imports
from gsa_keras import spec
from gsa_keras.applications import keras3 as applications
from studies import fashion_mnist as study

REPO = pathlib.Path(__file__).resolve().parents[1]
TOY = "toy_depthwise"


def _toy_flops(layer, input_shape, output_shape):
  """2 per multiply-accumulate: a 3x3 window per output element."""
  del layer, input_shape
  return {operators.MATMUL: 2 * 9 * int(np.prod(output_shape[1:]))}


def _toy_check(architecture, groups):
  del groups
  if architecture.max_relative_shift is not None:
    raise ValueError(f"`max_relative_shift` does not apply to attention_variant="
                     f"{TOY!r}, got {architecture.max_relative_shift!r}.")


def _toy_layer(site):
  return site.keras.layers.DepthwiseConv2D(
      3, padding="same", use_bias=False,
      depthwise_initializer=site.architecture.kernel_initializer,
      depthwise_regularizer=site.kernel_regularizer, name=site.name)


TOY_OPERATOR = operators.Operator(
    name=TOY, description="3x3 depthwise convolution (a test's toy)",
    make_layer=_toy_layer, layer_types=lambda k: (k.layers.DepthwiseConv2D,),
    count_flops=_toy_flops, check=_toy_check)


@pytest.fixture
def toy():
  with operators.registered(TOY_OPERATOR) as operator:
    yield operator
  assert TOY not in operators.names()


def _yaml(tmp_path, name, backbone):
  path = tmp_path / name
  fields = "\n".join(f"        {key}: {value}" for key, value in backbone.items())
  path.write_text("task:\n  model:\n    backbone:\n      type: gsa_resnet\n"
                  f"      gsa_resnet:\n{fields}\n")
  return path


def _experiment(name, yaml_path):
  params = exp_factory.get_exp_config(name)
  params = hyperparams.override_params_dict(params, str(yaml_path), is_strict=True)
  params.validate()
  return params


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_a_toy_operator_is_usable_everywhere_without_another_file(toy, tmp_path, capsys):
  assert TOY in operators.names() and TOY in spec.ATTENTION_VARIANTS

  # A Model Garden YAML: the digits experiment with the toy in groups 3 and 4.
  path = _yaml(tmp_path, "toy.yaml", {"attention_variant": TOY,
                                      "attention_groups": "[3, 4]"})
  params = _experiment("gsa_resnet_digits", path)
  garden = task_factory.get_task(params.task).build_model()
  layer = garden.backbone.get_layer("group3_block1_attention")
  assert isinstance(layer, tf_keras.layers.DepthwiseConv2D)
  assert garden.backbone.get_layer("group3_block1_pool")  # Pooled after it (Section 4).
  with pytest.raises(ValueError, match=f"does not apply to attention_variant='{TOY}'"):
    _experiment("gsa_resnet_digits", _yaml(tmp_path, "bad.yaml", {
        "attention_variant": TOY, "max_relative_shift": 2}))

  # The Keras models: the same network, parameter for parameter.
  model = applications.GSAResNet26(input_shape=(32, 32, 3), classes=10,
                                   attention_variant=TOY, attention_groups=(3, 4))
  assert isinstance(model.get_layer("group3_block1_attention"),
                    keras.layers.DepthwiseConv2D)
  assert _trainable(model) == _trainable(garden)
  assert model(tf.zeros((1, 32, 32, 3))).shape == (1, 10)

  # The FLOP counter's command: the toy's rule counts its layers.
  flops.main(["--model_id", "26", "--attention_variant", TOY, "--attention_groups",
              "3,4", "--input_size", "32", "--num_classes", "10", "--per_layer"])
  output = capsys.readouterr().out
  row = next(line.split() for line in output.splitlines()
             if line.startswith("group3_block1_attention "))
  # Group 3 at 32x32: 4x4 pixels after the stem and groups 1-2, 256 channels.
  assert row[1] == "DepthwiseConv2D" and row[3] == str(2 * 9 * 4 * 4 * 256)
  assert "26/standard/toy_depthwise/groups=3,4@32" in output
  assert f"{_trainable(garden) / 1e6:.2f}M" in output

  # A study arm: its YAML, its costs and its training command.
  arm_yaml = _yaml(tmp_path, "arm.yaml", {"attention_variant": TOY})
  arm = study.Arm("toy", str(arm_yaml), "test", "toy depthwise convolution")
  _experiment(study.EXPERIMENT, arm.config_file)
  costs = study.arm_costs(arm)
  assert costs["params"] > 0 and costs["flops"] > 0
  assert f"--config_file={arm_yaml}" in study._train_command(
      arm, tmp_path / "model_dir", "train_and_eval", "")


def test_the_toy_touches_no_file_outside_this_test():
  """The toy is this file's: no module of the package, benchmarks or studies names it."""
  for folder in ("gsa_keras", "benchmarks", "studies", "official_configs"):
    for path in (REPO / folder).rglob("*"):
      if path.is_file() and path.suffix in (".py", ".yaml", ".md"):
        assert TOY not in path.read_text(), path


def test_only_the_registry_chooses_by_attention_variant():
  """Nothing compares `attention_variant` with a name; the registry maps names."""
  pattern = re.compile(r"attention_variant *(==|!=|in)\b")
  for folder in ("gsa_keras", "benchmarks", "studies"):
    for path in (REPO / folder).rglob("*.py"):
      for number, line in enumerate(path.read_text().splitlines(), start=1):
        assert not pattern.search(line) or path.name == "operators.py", (
            f"{path}:{number}: {line.strip()}")


# -- The registry itself. -------------------------------------------------------------------


def test_every_paper_network_is_reproduced_by_the_operator_that_lists_it():
  listed = {}
  for operator in operators.all_operators():
    for row in operator.paper_rows:
      listed.setdefault(row, []).append(operator.name)
  for network in paper.NETWORKS:
    architecture = spec.Architecture(**network.config_fields())
    operator = (architecture.operator if architecture.attention_groups
                else operators.convolution())
    assert listed.pop(network.name) == [operator.name], network.name
  assert not listed  # Every listed row is a network of the paper.


@pytest.mark.parametrize("operator", operators.all_operators(), ids=lambda o: o.name)
def test_every_operator_builds_in_both_kerases_and_is_counted(operator):
  architecture = spec.Architecture(num_heads=4, max_relative_shift=None,
                                   attention_variant=operator.name if operator.attention
                                   else spec.default("attention_variant"))
  shape = (2, 8, 6, 16)
  counts = []
  for keras_module in (keras, tf_keras):
    layer = operator.layer(operators.Site(keras=keras_module, filters=16,
                                          architecture=architecture, name="spatial"))
    outputs = layer(tf.random.stateless_normal(shape, seed=(1, 2)), training=False)
    assert tuple(outputs.shape) == shape
    assert np.isfinite(np.asarray(outputs)).all()
    counts.append(layer.count_params())
    if keras_module is tf_keras:
      cost = flops.layer_flops(layer, (None,) + shape[1:], (None,) + shape[1:])
      assert set(cost) <= set(operators.KINDS) and sum(cost.values()) > 0
  assert counts[0] == counts[1] > 0


def test_registry_errors_name_what_is_wrong():
  with pytest.raises(ValueError, match=r"`attention_variant` must be one of \['gsa', "):
    spec.Architecture(attention_variant="sasa")
  with pytest.raises(ValueError, match="`attention_variant` must be one of"):
    spec.Architecture(attention_variant=operators.CONVOLUTION)  # Not an attention.
  with pytest.raises(ValueError, match="'gsa' is already registered"):
    operators.register(operators.find(operators.GSA))
  with pytest.raises(ValueError, match=r"no network \['Nonexistent-ResNet'\]"):
    operators.register(operators.Operator(
        name="nothing", description="", make_layer=None, layer_types=None,
        count_flops=None, paper_rows=("Nonexistent-ResNet",)))
  assert "nothing" not in operators.names()
  with pytest.raises(ValueError, match="does not downsample"):
    operators.get(operators.GSA).layer(operators.Site(
        keras=tf_keras, filters=8, architecture=spec.Architecture(), name="x",
        strides=2))


def test_table4_family_and_the_layers_names_come_from_the_registry():
  assert spec.GSA_VARIANTS == operators.family_options(operators.GSA)
  assert list(spec.GSA_VARIANTS) == ["gsa", "positional", "content_column",
                                     "content_row", "column", "row", "content"]
  assert spec.ATTENTION_VARIANTS == operators.names() == tuple(spec.GSA_VARIANTS) + (
      operators.AXIAL, operators.LOCAL, operators.SAN_PAIRWISE, operators.SAN_PATCHWISE)
  assert spec.LOCAL_KERNEL_SIZE == operators.LOCAL_KERNEL_SIZE == 7


def test_contributing_notes_list_the_files_of_a_new_operator():
  notes = (REPO / "docs" / "contributing.md").read_text()
  section = notes[notes.index("## Adding an operator"):]
  for part in ("gsa_keras/ops/", "gsa_keras/layers/", "gsa_keras/operators.py",
               "tests/test_operator_registry.py"):
    assert part in section, part
  assert "There is no registry yet" not in textwrap.dedent(section)
