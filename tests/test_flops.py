"""Parameter and FLOP parity with the paper, and the FLOP counter itself."""

import math
import subprocess
import sys

import pytest
import tensorflow as tf
import tf_keras

from official.vision.modeling.backbones import resnet as garden_resnet

from gsa_keras import classifier
from gsa_keras import flops
from gsa_keras import operators
from gsa_keras import paper
from gsa_keras.backbones import gsa_resnet
from gsa_keras.configs import backbones as configs
from gsa_keras.layers import tf_keras as gsa_layers
from gsa_keras import spec
from tests.support import docs_blocks
from tests.support import paper_costs

# The paper's networks with parameters and FLOPs (`paper_costs.PAPER`).
PAPER = paper_costs.PAPER
PARAMS_TOLERANCE = 0.02
FLOPS_TOLERANCE = 0.05


@pytest.mark.parametrize("name", sorted(PAPER))
def test_params_match_the_paper(name):
  # Parameters are the trainable weights: batch normalization's moving statistics
  # (about 0.05M in ResNet-50) are not learned, and not counted (like torchvision's
  # 25.56M for ResNet-50). The head (2048 x 1000 + 1000) is counted.
  paper_millions = PAPER[name].params_m
  ours = paper_costs.model_cost(name).trainable_params / 1e6
  assert abs(ours / paper_millions - 1) <= PARAMS_TOLERANCE, (ours, paper_millions)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_flops_match_the_paper(name):
  # The paper's FLOPs are those of convolutions, the dense head and the attention
  # einsums (2 per multiply-accumulate). Batch normalization, activations, residual
  # additions and pooling add ~0.5% on top; within tolerance either way.
  paper_billions = PAPER[name].gflops
  cost = paper_costs.model_cost(name)
  for counted in (cost.multiply_accumulate_flops, cost.flops):
    assert abs(counted / 1e9 / paper_billions - 1) <= FLOPS_TOLERANCE, (
        counted, paper_billions)


def test_convolutional_resnet50_is_the_model_garden_resnet50():
  input_specs = tf_keras.layers.InputSpec(shape=[None, 224, 224, 3])
  ours = gsa_resnet.GSAResNet(model_id=50, input_specs=input_specs, attention_groups=())
  garden = garden_resnet.ResNet(50, input_specs=input_specs)
  assert ours.count_params() == garden.count_params() == 23_561_152
  assert (sum(math.prod(w.shape) for w in ours.trainable_weights) ==
          sum(math.prod(w.shape) for w in garden.trainable_weights) == 23_508_032)
  assert (sorted(tuple(w.shape) for w in ours.weights) ==
          sorted(tuple(w.shape) for w in garden.weights))
  assert {k: v.as_list() for k, v in ours.output_specs.items()} == {
      k: v.as_list() for k, v in garden.output_specs.items()}
  # With the 1000-class head: He et al.'s 25.56M learned parameters.
  assert paper_costs.model_cost("ResNet-50").trainable_params == 25_557_032


# -- The counter against independent counts. ---------------------------------------------


_MATMULS = ("MatMul", "BatchMatMulV2", "BatchMatMulV3")


def _graph_product_flops(layer, input_shape):
  """2 x the multiply-accumulates of every einsum and matmul in the layer's traced graph."""
  function = tf.function(lambda x: layer(x, training=False))
  graph = function.get_concrete_function(
      tf.TensorSpec(input_shape, tf.float32)).graph
  total = 0
  for op in graph.get_operations():
    if op.type == "Einsum":
      operands = op.get_attr("equation").decode().split("->")[0].split(",")
      sizes = {index: int(size) for term, tensor in zip(operands, op.inputs)
               for index, size in zip(term, tensor.shape)}
      total += 2 * math.prod(sizes.values())
    elif op.type in _MATMULS:
      transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
      contracted = op.inputs[0].shape[-2 if transposed else -1]
      total += 2 * math.prod(op.outputs[0].shape) * contracted
  return total


# SAN's operators are counted against their layers' weight shapes instead
# (tests/test_san_attention.py): their products are not einsums of the layer's config.
@pytest.mark.parametrize("variant", [name for name in operators.names() if name not in (
    operators.SAN_PAIRWISE, operators.SAN_PATCHWISE)])
def test_attention_formula_matches_the_layers_products(variant):
  batch, height, width, channels, heads = 1, 8, 12, 32, 4
  operator = operators.get(variant)
  layer = operator.layer(operators.Site(
      keras=tf_keras, filters=channels, name="attention",
      architecture=spec.Architecture(attention_variant=variant, num_heads=heads)))
  shape = (batch, height, width, channels)
  layer.build(shape)
  counted = flops.layer_flops(layer, shape, shape)[flops.ATTENTION]
  # The formula adds what is not a product: the content softmax over all pixels
  # (3 per key element), and the axial baseline's logit sums and softmaxes
  # (4 per logit, (height + width) logits per pixel and head), and the local
  # baseline's three sums and softmax (5 per logit, kernel_size**2 per pixel and head).
  pixels = height * width
  if isinstance(layer, gsa_layers.AxialContentPositionalAttention):
    not_einsum = 4 * pixels * (height + width) * heads
  elif isinstance(layer, gsa_layers.LocalSelfAttention):
    not_einsum = 5 * pixels * layer.kernel_size**2 * heads
  else:
    not_einsum = 3 * pixels * channels if layer.use_content else 0
  assert counted - not_einsum == _graph_product_flops(layer, shape)


def test_convolution_flops_match_tensorflow_profiler():
  model = classifier.build_classifier(
      configs.GSAResNet(model_id=26, attention_groups=[]), input_size=64, num_classes=10)
  function = tf.function(lambda x: model(x, training=False))
  # The profiler reads the shapes of the function's graph (variables included).
  graph = function.get_concrete_function(
      tf.TensorSpec((1, 64, 64, 3), tf.float32)).graph
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options["output"] = "none"
  profile = tf.compat.v1.profiler.profile(graph=graph, cmd="graph",
                                          options=options)
  profiled = 0
  nodes = list(profile.children)
  while nodes:
    node = nodes.pop()
    nodes.extend(node.children)
    if node.name.split("/")[-1] in ("Conv2D", "MatMul", "BiasAdd"):
      profiled += node.float_ops
  ours = flops.count_params_and_flops(model).flops_by_kind[flops.MATMUL]
  assert profiled > 0 and ours == profiled


def test_conv_and_dense_formulas():
  inputs = tf_keras.Input((10, 10, 8))
  x = tf_keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
  x = tf_keras.layers.Conv2D(4, 1, strides=2)(x)
  x = tf_keras.layers.GlobalAveragePooling2D()(x)
  outputs = tf_keras.layers.Dense(3)(x)
  cost = flops.count_params_and_flops(tf_keras.Model(inputs, outputs))
  assert cost.flops_by_kind[flops.MATMUL] == (
      2 * 9 * 8 * 16 * 100 + (2 * 16 + 1) * 5 * 5 * 4 + 2 * 4 * 3 + 3)
  assert cost.params == 9 * 8 * 16 + 16 * 4 + 4 + 4 * 3 + 3


def test_unknown_layer_is_an_error_not_zero():
  inputs = tf_keras.Input((4, 4, 3))
  outputs = tf_keras.layers.LayerNormalization()(inputs)
  with pytest.raises(NotImplementedError, match="LayerNormalization"):
    flops.count_params_and_flops(tf_keras.Model(inputs, outputs))


def test_command_prints_a_table(capsys):
  flops.main(["--model_id", "26", "--attention_groups", "2,3,4", "--input_size", "64",
              "--num_classes", "10", "--per_layer"])
  output = capsys.readouterr().out
  cost = flops.count_params_and_flops(
      configs.GSAResNet(model_id=26, attention_groups=[2, 3, 4]), 64, 10)
  assert "group2_block1_attention" in output
  assert f"{cost.trainable_params / 1e6:.2f}M" in output
  assert f"{cost.multiply_accumulate_flops / 1e9:.2f}G" in output
  assert "26/standard/gsa/groups=2,3,4@64" in output


def test_command_rejects_a_bad_config():
  with pytest.raises(ValueError, match="`model_id`"):
    flops.main(["--model_id", "34"])


# -- The paper's table (`gsa_keras.paper`) and the docs' copy of it. --------------------


def test_paper_table_imports_neither_keras_nor_tensorflow():
  code = ("import sys, gsa_keras.paper; print(sorted({m.split('.')[0] for m in "
          "sys.modules} & {'tensorflow', 'tf_keras', 'keras', 'official'}))")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True)
  assert result.stdout.strip() == "[]"


def test_every_paper_network_is_a_valid_config_with_its_numbers():
  assert len(paper.BY_NAME) == len(paper.NETWORKS)
  for network in paper.NETWORKS:
    configs.GSAResNet(**network.config_fields()).validate()
    assert 0 < network.top1 < (network.top5 or 100) <= 100, network.name
  # Tables 2, 3 and 6 give parameters and FLOPs; Tables 4 and 5 do not.
  assert [n.name for n in paper.with_params_and_flops()] == [
      "ResNet-38", "GSA-ResNet-38", "ResNet-50", "GSA-ResNet-50", "ResNet-101",
      "GSA-ResNet-101", "GSA-M-ResNet-50", "Local-ResNet-50", "Axial-ResNet-50",
      "Positional-ResNet-50"]
  with pytest.raises(KeyError, match="GSA-ResNet-50"):
    paper.network("GSA-ResNet-51")


def _docs_flops_table():
  """The rows of the table marked `flops-table` (docs/models.md), header left out."""
  lines = docs_blocks.block("flops-table").text.splitlines()
  return [[cell.strip() for cell in line.strip("|").split("|")]
          for line in lines[2:]]


def test_docs_flops_table_holds_the_papers_numbers_and_ours():
  rows = _docs_flops_table()
  assert len(rows) == len(PAPER)
  for row, network in zip(rows, PAPER.values()):
    cost = paper_costs.model_cost(network.name)
    assert row[1:] == [f"{cost.trainable_params / 1e6:.2f}M", f"{network.params_m}M",
                       f"{cost.multiply_accumulate_flops / 1e9:.2f}G",
                       f"{network.gflops}G"], (row, network.name)
