"""Parameters and FLOPs of tf_keras models, GSA modules included.

FLOPs are counted as the paper does (Section 4): multiplications and additions
separately, for one image at inference. The counter walks a functional model's graph
(nested models included) and applies a formula per layer:

- Conv2D / Dense: 2 FLOPs per multiply-accumulate (the convention of TensorFlow's
  profiler), plus one per output for a bias.
- GSA modules: the einsums of Appendix B, from the layer's configuration: the fused
  K/Q/V projection (eq. 3), softmax(K)^T V and Q C (eq. 4), Q P and S V along columns
  and rows (eq. 7), the batch normalization between them and the final sum (eq. 8).
  The relative-to-absolute lookup (eqs. 5-6) is a gather here: no FLOPs.
- Table 2's axial baseline: q.k and q.r logits, softmax and the weighted sum per axis.
- Table 3's local baseline (`LocalSelfAttention`): the projection, q.k over each
  pixel's k x k window, the relative logits as the layer computes them (q's halves
  against the k row-offset and k column-offset embeddings, then one addition per
  window logit), the sum of the two logits, the softmax (3 per logit: exp, sum,
  divide) and the weighted sum. Every window is counted whole, border pixels too (the
  layer computes masked neighbours and drops them in the softmax). Gathering the
  neighbourhood is a copy: no FLOPs.
- Element-wise layers (batch normalization 2 per element, activations 1, residual
  additions 1, pooling one per window element): reported separately as `elementwise`.

The paper's numbers match the multiply-accumulate part (`matmul` + `attention`); see
`gsa_keras.paper` and the README. Run `python -m gsa_keras.flops --help` for a table.
"""

import argparse
import dataclasses
import math
import sys
from typing import Dict, List, Optional, Sequence, Union

import tf_keras

from official.vision.modeling.layers import nn_layers

from gsa_keras import classifier
from gsa_keras import paper
from gsa_keras import spec
from gsa_keras.configs import backbones as backbone_configs
from gsa_keras.layers import tf_keras as gsa_layers

# Cost kinds, in the order tables show them.
MATMUL = "matmul"  # Convolutions and dense layers.
ATTENTION = "attention"  # Einsums and softmaxes inside attention modules.
ELEMENTWISE = "elementwise"  # Normalization, activations, additions, pooling.
KINDS = (MATMUL, ATTENTION, ELEMENTWISE)

# Layers that compute nothing countable at inference.
_FREE_LAYERS = (tf_keras.layers.InputLayer, tf_keras.layers.Dropout,
                tf_keras.layers.Reshape, tf_keras.layers.Flatten,
                nn_layers.StochasticDepth)


@dataclasses.dataclass(frozen=True)
class LayerCost:
  """FLOPs of one layer call, split by kind, and the layer's parameters."""
  name: str
  layer_type: str
  params: int
  flops: Dict[str, int]


@dataclasses.dataclass(frozen=True)
class ModelCost:
  """Parameters and FLOPs of a model for one image."""
  params: int  # Every weight, including batch normalization's moving statistics.
  trainable_params: int
  flops_by_kind: Dict[str, int]
  layers: List[LayerCost]

  @property
  def multiply_accumulate_flops(self) -> int:
    """FLOPs of convolutions, dense layers and attention: the paper's count."""
    return self.flops_by_kind[MATMUL] + self.flops_by_kind[ATTENTION]

  @property
  def flops(self) -> int:
    """Every counted FLOP, element-wise layers included."""
    return sum(self.flops_by_kind.values())


# -- Per-layer formulas. -------------------------------------------------------------


def _elements(shape) -> int:
  return math.prod(int(d) for d in shape[1:])


def _conv_flops(layer, input_shape, output_shape):
  kernel_h, kernel_w = layer.kernel_size
  groups = getattr(layer, "groups", 1)
  macs_per_output = kernel_h * kernel_w * int(input_shape[-1]) // groups
  outputs = _elements(output_shape)
  return {MATMUL: 2 * macs_per_output * outputs + (outputs if layer.use_bias else 0)}


def _dense_flops(layer, input_shape, output_shape):
  outputs = _elements(output_shape)
  return {MATMUL: 2 * int(input_shape[-1]) * outputs +
                  (outputs if layer.use_bias else 0)}


def _attention_dims(layer, input_shape):
  _, height, width, in_channels = (int(d) if d is not None else None
                                   for d in input_shape)
  if height is None or width is None:
    raise ValueError(f"Layer {layer.name!r} has unknown spatial input size "
                     f"{tuple(input_shape)}; FLOPs need a static input size.")
  key_channels = layer.key_channels or in_channels
  return height * width, height, width, in_channels, key_channels, layer.filters


def _gsa_flops(layer, input_shape, output_shape):
  """Appendix B, eqs. 3-8, for one `GlobalSelfAttention` call."""
  del output_shape
  pixels, height, width, d_in, d_k, d_v = _attention_dims(layer, input_shape)
  heads = layer.num_heads
  projected = (d_k if layer.use_content else 0) + d_k + d_v
  attention = 2 * pixels * d_in * projected  # eq. 3
  elementwise = 0
  if layer.use_content:  # eq. 4: softmax (exp, sum, divide), C = K^T V, Y = Q C.
    attention += 3 * pixels * d_k + 2 * (2 * pixels * d_k * d_v // heads)
  for used, length in ((layer.use_column, height), (layer.use_row, width)):
    if used:  # eq. 7: S = Q P, Y = S V along the axis.
      attention += 2 * pixels * length * (d_k + d_v)
  if layer.use_column and layer.use_row:  # Batch normalization between them.
    elementwise += 2 * pixels * d_v
  if layer.use_content and (layer.use_column or layer.use_row):  # eq. 8.
    elementwise += pixels * d_v
  return {ATTENTION: attention, ELEMENTWISE: elementwise}


def _axial_flops(layer, input_shape, output_shape):
  """Table 2's baseline: per axis, softmax(q.k + q.r) V, then BN between the axes."""
  del output_shape
  pixels, height, width, d_in, d_k, d_v = _attention_dims(layer, input_shape)
  heads = layer.num_heads
  attention = 2 * pixels * d_in * (2 * d_k + d_v)  # eq. 3 with keys.
  for length in (height, width):
    logits = pixels * length * heads
    # q.k and q.r, their sum, softmax (exp, sum, divide), weighted sum of values.
    attention += 2 * 2 * pixels * length * d_k + logits + 3 * logits
    attention += 2 * pixels * length * d_v
  return {ATTENTION: attention, ELEMENTWISE: 2 * pixels * d_v}


def _local_flops(layer, input_shape, output_shape):
  """Table 3's local baseline: softmax(q.k + q.r) V over each pixel's k x k window."""
  del output_shape
  pixels, _, _, d_in, d_k, d_v = _attention_dims(layer, input_shape)
  window = layer.kernel_size ** 2
  logits = pixels * window * layer.num_heads
  attention = 2 * pixels * d_in * (2 * d_k + d_v)  # eq. 3 with keys.
  attention += 2 * pixels * window * d_k  # q_ij . k_ab
  attention += 2 * pixels * layer.kernel_size * d_k  # q . r^row and q . r^col
  attention += logits  # r^row + r^col for each window offset
  attention += logits + 3 * logits  # q.k + q.r; softmax (exp, sum, divide)
  attention += 2 * pixels * window * d_v  # weighted sum of the values
  return {ATTENTION: attention}


def _batch_norm_flops(layer, input_shape, output_shape):
  del layer, input_shape
  return {ELEMENTWISE: 2 * _elements(output_shape)}  # x * scale + offset.


def _activation_flops(layer, input_shape, output_shape):
  del input_shape
  activation = getattr(layer, "activation", None)
  if activation is tf_keras.activations.linear:
    return {}
  return {ELEMENTWISE: _elements(output_shape)}


def _add_flops(layer, input_shape, output_shape):
  del layer
  return {ELEMENTWISE: (len(input_shape) - 1) * _elements(output_shape)}


def _pool_flops(layer, input_shape, output_shape):
  del input_shape
  window = math.prod(layer.pool_size)
  return {ELEMENTWISE: window * _elements(output_shape)}


def _global_pool_flops(layer, input_shape, output_shape):
  del layer, output_shape
  return {ELEMENTWISE: _elements(input_shape)}


def _free(layer, input_shape, output_shape):
  del layer, input_shape, output_shape
  return {}


# Checked in order: the first matching type wins (subclasses before bases).
_FORMULAS = (
    (gsa_layers.GlobalSelfAttention, _gsa_flops),
    (gsa_layers.AxialContentPositionalAttention, _axial_flops),
    (gsa_layers.LocalSelfAttention, _local_flops),
    (tf_keras.layers.Conv2D, _conv_flops),
    (tf_keras.layers.Dense, _dense_flops),
    (tf_keras.layers.BatchNormalization, _batch_norm_flops),
    (tf_keras.layers.Activation, _activation_flops),
    (tf_keras.layers.ReLU, _activation_flops),
    (tf_keras.layers.Add, _add_flops),
    (tf_keras.layers.MaxPool2D, _pool_flops),
    (tf_keras.layers.AveragePooling2D, _pool_flops),
    (tf_keras.layers.GlobalAveragePooling2D, _global_pool_flops),
    (_FREE_LAYERS, _free),
)


def layer_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """FLOPs of one call of `layer` by kind, for one image."""
  for layer_type, formula in _FORMULAS:
    if isinstance(layer, layer_type):
      return formula(layer, input_shape, output_shape)
  raise NotImplementedError(
      f"No FLOP formula for layer {layer.name!r} of type {type(layer).__name__}; "
      "add one to gsa_keras.flops._FORMULAS.")


# -- Walking a model. -------------------------------------------------------------------


def _layer_calls(model):
  """(layer, input shape(s), output shape) of every call in a functional model."""
  # `_nodes_by_depth` is tf_keras' record of the model's own graph; a layer's
  # `inbound_nodes` may also hold calls from other graphs.
  for depth in sorted(model._nodes_by_depth, reverse=True):  # pylint: disable=protected-access
    for node in model._nodes_by_depth[depth]:  # pylint: disable=protected-access
      if node.is_input:
        continue
      yield node.layer, node.input_shapes, node.output_shapes


def layer_costs(model: tf_keras.Model) -> List[LayerCost]:
  """Per-layer FLOPs of a functional tf_keras model, nested models flattened."""
  costs = []
  for layer, input_shape, output_shape in _layer_calls(model):
    if isinstance(layer, tf_keras.Model):
      costs.extend(layer_costs(layer))
      continue
    costs.append(LayerCost(
        name=layer.name, layer_type=type(layer).__name__,
        params=layer.count_params() if layer.built else 0,
        flops=layer_flops(layer, input_shape, output_shape)))
  return costs


def _count_weights(weights) -> int:
  return sum(math.prod(w.shape) for w in weights)


def count_params_and_flops(
    model_or_config: Union[tf_keras.Model, backbone_configs.GSAResNet,
                           backbone_configs.Backbone],
    input_size: int = 224,
    num_classes: int = 1000) -> ModelCost:
  """Parameters and FLOPs of a model, or of a classifier built from a backbone config.

  Args:
    model_or_config: a built functional tf_keras model with static input size, or a
      `GSAResNet` (or `Backbone` one-of) config, which is built into a Model Garden
      `ClassificationModel` with `num_classes` outputs for `input_size` images.
    input_size: image height and width when building from a config.
    num_classes: classifier outputs when building from a config (the paper: 1000).

  Returns:
    A `ModelCost` for one image.
  """
  model = model_or_config
  if not isinstance(model, tf_keras.Model):
    model = classifier.build_classifier(model_or_config, input_size, num_classes)
  costs = layer_costs(model)
  by_kind = {kind: sum(c.flops.get(kind, 0) for c in costs) for kind in KINDS}
  return ModelCost(params=model.count_params(),
                   trainable_params=_count_weights(model.trainable_weights),
                   flops_by_kind=by_kind, layers=costs)


# -- The command. ----------------------------------------------------------------------


def format_table(rows: Sequence[Sequence[str]]) -> str:
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                     for i, (cell, w) in enumerate(zip(row, widths)))
           for row in rows]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def _summary_row(name, cost, paper_params=None, paper_flops=None):
  def vs_paper(value, paper):
    return "" if paper is None else f"{paper:.1f} ({100 * (value / paper - 1):+.1f}%)"
  params = cost.trainable_params / 1e6
  flops = cost.multiply_accumulate_flops / 1e9
  return [name, f"{params:.2f}M", vs_paper(params, paper_params),
          f"{flops:.2f}G", vs_paper(flops, paper_flops),
          f"{cost.flops / 1e9:.2f}G"]


_HEADER = ["model", "params", "paper", "FLOPs", "paper", "FLOPs incl. elementwise"]


def _parse_groups(text):
  text = text.strip().lower()
  if text in ("", "none"):
    return []
  return [int(g) for g in text.split(",")]


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m gsa_keras.flops",
      description="Parameters and FLOPs (multiplications and additions counted "
                  "separately, one image) of a GSA-ResNet classifier.")
  parser.add_argument("--paper", action="store_true",
                      help="Table of all the paper's networks against its numbers.")
  parser.add_argument("--model_id", type=int, default=50,
                      help=f"one of {list(spec.BLOCK_REPEATS)}")
  parser.add_argument("--width_variant", default=spec.DEFAULT_WIDTH_VARIANT,
                      help=f"one of {list(spec.WIDTH_VARIANTS)}")
  parser.add_argument("--attention_groups", default="1,2,3,4",
                      help="comma-separated residual groups using attention; "
                           "'none' for the convolutional ResNet")
  parser.add_argument("--attention_variant", default=spec.DEFAULT_ATTENTION_VARIANT)
  parser.add_argument("--num_heads", type=int, default=spec.DEFAULT_NUM_HEADS)
  parser.add_argument("--max_relative_shift", type=int, default=None)
  parser.add_argument("--input_size", type=int, default=224)
  parser.add_argument("--num_classes", type=int, default=1000)
  parser.add_argument("--per_layer", action="store_true",
                      help="also print every layer's parameters and FLOPs")
  args = parser.parse_args(argv)

  rows = [_HEADER]
  if args.paper:
    for network in paper.with_params_and_flops():
      cost = count_params_and_flops(
          backbone_configs.GSAResNet(**network.config_fields()), args.input_size,
          args.num_classes)
      rows.append(_summary_row(network.name, cost, network.params_m, network.gflops))
      tf_keras.backend.clear_session()
    print(format_table(rows))
    return

  config = backbone_configs.GSAResNet(
      model_id=args.model_id, width_variant=args.width_variant,
      attention_groups=_parse_groups(args.attention_groups),
      attention_variant=args.attention_variant, num_heads=args.num_heads,
      max_relative_shift=args.max_relative_shift)
  config.validate()
  cost = count_params_and_flops(config, args.input_size, args.num_classes)
  if args.per_layer:
    layer_rows = [["layer", "type", "params"] + list(KINDS)]
    for layer in cost.layers:
      layer_rows.append([layer.name, layer.layer_type, str(layer.params)] +
                        [str(layer.flops.get(kind, 0)) for kind in KINDS])
    print(format_table(layer_rows) + "\n")
  groups = ",".join(map(str, config.attention_groups)) or "none"
  name = (f"{config.model_id}/{config.width_variant}/{config.attention_variant}"
          f"/groups={groups}@{args.input_size}")
  rows.append(_summary_row(name, cost))
  print(format_table(rows))


if __name__ == "__main__":
  main(sys.argv[1:])
