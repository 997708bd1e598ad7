"""Parameters and FLOPs of tf_keras models, GSA modules included.

FLOPs are counted as the paper does (Section 4): multiplications and additions
separately, for one image at inference. The counter walks a functional model's graph
(nested models included) and applies a formula per layer:

- The operators' layers: each registered operator's own rule (`gsa_keras.operators`).
  The convolution's counts every Conv2D (the stem and the 1x1 convolutions too): 2
  FLOPs per multiply-accumulate (the convention of TensorFlow's profiler) plus one per
  output for a bias; the GSA module's counts the einsums of Appendix B (eqs. 3-8) from
  the layer's configuration; the axial and local baselines' their logits, softmaxes
  and weighted sums.
- Dense: 2 FLOPs per multiply-accumulate, plus one per output for a bias.
- Element-wise layers (batch normalization 2 per element, activations 1, residual
  additions 1, pooling one per window element): reported separately as `elementwise`.

The paper's numbers match the multiply-accumulate part (`matmul` + `attention`); see
`gsa_keras.paper` and the README. `--san` prints SAN's networks counted by SAN's own
convention instead (multiply-adds, not FLOPs; `gsa_keras.san_network`). Run
`python -m gsa_keras.flops --help` for a table: the command takes every option of
`gsa_keras.spec.Architecture` as a flag.
"""

import argparse
import dataclasses
import math
import sys
from typing import Dict, List, Optional, Sequence, Union

import tf_keras

from official.vision.modeling.layers import nn_layers

from gsa_keras import compat
from gsa_keras import classifier
from gsa_keras import operators
from gsa_keras import paper
from gsa_keras import spec
from gsa_keras.configs import backbones as backbone_configs

# Cost kinds, in the order tables show them.
MATMUL = operators.MATMUL  # Convolutions and dense layers.
ATTENTION = operators.ATTENTION  # Einsums and softmaxes inside attention modules.
ELEMENTWISE = operators.ELEMENTWISE  # Normalization, activations, additions, pooling.
KINDS = operators.KINDS

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


def _dense_flops(layer, input_shape, output_shape):
  outputs = _elements(output_shape)
  return {MATMUL: 2 * int(input_shape[-1]) * outputs +
                  (outputs if layer.use_bias else 0)}


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


# Checked in order after the operators' rules: the first matching type wins
# (subclasses before bases).
_FORMULAS = (
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
  """FLOPs of one call of `layer` by kind, for one image: the rule of the registered
  operator whose layer it is (`gsa_keras.operators`), or of its layer type."""
  for layer_types, formula in operators.flop_rules(tf_keras) + list(_FORMULAS):
    if isinstance(layer, layer_types):
      return formula(layer, input_shape, output_shape)
  raise NotImplementedError(
      f"No FLOP formula for layer {layer.name!r} of type {type(layer).__name__}; "
      "register its operator's rule (gsa_keras.operators) or add one to "
      "gsa_keras.flops._FORMULAS.")


# -- Walking a model. -------------------------------------------------------------------


def _layer_calls(model):
  """(layer, input shape(s), output shape) of every call in a functional model."""
  return compat.functional_layer_calls(model)


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
    model_or_config: Union[tf_keras.Model, spec.Architecture,
                           backbone_configs.GSAResNet, backbone_configs.Backbone],
    input_size: int = 224,
    num_classes: int = 1000) -> ModelCost:
  """Parameters and FLOPs of a model, or of a classifier built from a backbone config.

  Args:
    model_or_config: a built functional tf_keras model with static input size, or an
      `Architecture`, a `GSAResNet` config or a `Backbone` one-of, which is built into
      a Model Garden `ClassificationModel` with `num_classes` outputs for
      `input_size` images.
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


def _option_flags(parser: argparse.ArgumentParser) -> None:
  """One flag per option of `spec.Architecture`, its doc as help."""
  for name in spec.OPTION_NAMES:
    value = spec.default(name)
    if name == "attention_variant":
      shown = ", ".join(f"'{op.name}' ({op.description})"
                        for op in operators.all_operators() if op.attention)
      help_text = f"the attention operator: {shown}. Default: {value!r}"
    else:
      help_text = f"{spec.OPTION_DOCS[name]} Default: {value!r}"
    if isinstance(value, tuple):
      help_text += " (comma-separated; 'none' for empty)"
    parser.add_argument(f"--{name}", default=None, help=help_text.replace("%", "%%"))


def architecture_from_flags(args: argparse.Namespace) -> spec.Architecture:
  """The `Architecture` of the option flags given (the others default)."""
  options = {name: spec.parse_option(name, getattr(args, name))
             for name in spec.OPTION_NAMES if getattr(args, name) is not None}
  return spec.Architecture(**options)


def san_table() -> str:
  """SAN's six networks at 224x224: parameters and multiply-adds as SAN's counter counts
  them (trainable parameters; multiply-adds of convolutions, dense layers, batch norms,
  ReLUs, pooling and SAN's subtraction and aggregation operators, not of its softmax,
  gathers and residual additions: `gsa_keras.san_network`), against SAN's Table 2."""
  from gsa_keras import san_network  # Builds SAN's layers only when asked for.
  rows = [["network", "params", "SAN's", "diff", "GMAC", "SAN's", "diff", "top-1"]]
  for name, published in sorted(san_network.SAN_NETWORKS.items()):
    count = san_network.count_params_and_macs(san_network.build_published(tf_keras, name))
    params, gmacs = count.params / 1e6, count.macs / 1e9
    rows.append([name, f"{params:.2f}M", f"{published['params_m']}M",
                 f"{100 * (params / published['params_m'] - 1):+.2f}%", f"{gmacs:.3f}",
                 f"{published['gmacs']}", f"{100 * (gmacs / published['gmacs'] - 1):+.2f}%",
                 f"{published['top1']}"])
    tf_keras.backend.clear_session()
  return format_table(rows)


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m gsa_keras.flops",
      description="Parameters and FLOPs (multiplications and additions counted "
                  "separately, one image) of a GSA-ResNet classifier.")
  parser.add_argument("--paper", action="store_true",
                      help="Table of all the paper's networks against its numbers.")
  parser.add_argument("--san", action="store_true",
                      help="Table of SAN's six networks (Zhao et al. 2020) against its "
                           "Table 2, counted by SAN's own convention "
                           "(gsa_keras.san_network.count_params_and_macs).")
  _option_flags(parser)
  parser.add_argument("--input_size", type=int, default=224)
  parser.add_argument("--num_classes", type=int, default=1000)
  parser.add_argument("--per_layer", action="store_true",
                      help="also print every layer's parameters and FLOPs")
  args = parser.parse_args(argv)

  if args.san:
    print(san_table())
    return
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

  architecture = architecture_from_flags(args)
  architecture.validate(input_size=(args.input_size, args.input_size),
                        input_size_argument="--input_size")
  cost = count_params_and_flops(architecture, args.input_size, args.num_classes)
  if args.per_layer:
    layer_rows = [["layer", "type", "params"] + list(KINDS)]
    for layer in cost.layers:
      layer_rows.append([layer.name, layer.layer_type, str(layer.params)] +
                        [str(layer.flops.get(kind, 0)) for kind in KINDS])
    print(format_table(layer_rows) + "\n")
  groups = ",".join(map(str, architecture.attention_groups)) or "none"
  name = (f"{architecture.model_id}/{architecture.width_variant}/"
          f"{architecture.attention_variant}/groups={groups}@{args.input_size}")
  rows.append(_summary_row(name, cost))
  print(format_table(rows))


if __name__ == "__main__":
  main(sys.argv[1:])
