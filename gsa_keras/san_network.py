"""SAN, the self-attention networks of Zhao, Jia and Koltun 2020 ("Exploring
Self-attention for Image Recognition"), for either Keras, and their counts.

The networks (Section 3.4, Table 1; SAN's `model/san.py`): every spatial operator is one
of SAN's self-attention operators (`PairwiseSelfAttention` or `PatchwiseSelfAttention`,
`gsa_keras.layers`), every other one a 1x1 convolution:

- stem: a 1x1 convolution to 64 channels (no bias), batch norm, ReLU, at the input's
  resolution (SAN's `conv_in`, `bn_in`);
- five stages (SAN's `layer0`..`layer4`; here `stage1`..`stage5`) of widths
  64/256/512/1024/2048 and footprints 3/7/7/7/7, each: a 2x2 max pool at stride 2, a
  1x1 transition convolution to the stage's width (no bias; SAN's `conv0`..`conv4`),
  the stage's blocks, then batch norm and ReLU (SAN's `bn0`..`bn4`: after the blocks,
  not before them);
- pre-activation bottleneck blocks (SAN's `Bottleneck`) of width `P`: batch norm,
  ReLU, the self-attention operator from `P` to `P / 4` channels (relation channels
  `P / 16`, weights shared by 8 channels: SAN's `SAM(sa_type, P, P // 16, P // 4, 8,
  k)`), batch norm, ReLU, a 1x1 convolution back to `P` (with bias), plus the
  block's input (identity);
- blocks per stage [2, 1, 2, 4, 1] (SAN10), [3, 2, 3, 5, 2] (SAN15), [3, 3, 4, 6, 3]
  (SAN19);
- head: global average pooling and a dense layer to the classes (logits; SAN's
  `avgpool` and `fc`), right after the last stage's own batch norm and ReLU
  (`stage5_output_norm`, `stage5_output_relu`): no further ones.

The stages' sides are the input's floor-divided by 2, 4, 8, 16 and 32, and reflection
padding needs more than `k // 2` pixels per side, so SAN's footprints need inputs of at
least 128x128 pixels (`minimum_input_size`; 4x4 in the last stage for its 7x7
footprint); smaller inputs raise a ValueError, unless `narrow_footprints` is set: then
a stage whose map is too small gets the widest footprint that fits it
(`gsa_keras.operators.san_kernel_size`: 5x5 on 3x3 maps, 3x3 on 2x2, 1x1 on 1x1), the
rule of SAN's operators in the GSA-ResNet structure, and any input of at least 32x32
runs. That is no longer SAN's published network (a patchwise operator's weights
depend on its footprint), but it lets SAN's structure train on small images.

Counts (`count_params_and_macs`) follow SAN's counter (`tool/counter.py`, which calls
`util/complexity.py`, a copy of `flops-counter.pytorch` with three SAN hooks), so that
they compare with Table 2's "Params" and "FLOPs" (multiply-adds, one 224x224 image):

- parameters: the trainable ones (PyTorch's `requires_grad`: kernels, biases, batch
  norms' scale and offset; not the moving statistics);
- a convolution: `k_h k_w C_in C_out / groups` per output pixel, plus `C_out` per
  output pixel for a bias; a dense layer: `C_in C_out`, its bias not counted;
- batch norm: 2 per element; ReLU: 1 per element; a pooling layer (max, average,
  global average): 1 per element of its input;
- SAN's own CUDA operators: `Subtraction` and `Subtraction2` (the pairwise relation
  `phi(x_i) - psi(x_j)` and the position term `p_i - p_j`): 1 per element of their
  output; `Aggregation`: `k^2` per output element;
- not counted, because the counter has no hook for them: the softmax, `Unfold` and
  `ReflectionPad2d` (the patchwise relation's gathering), the concatenations, and the
  residual additions (`out += identity`, not a module).

Inside an attention layer, `gamma`'s 1x1 convolutions, batch norms and ReLUs count per
element of what they see: in the pairwise operator one relation vector per pixel and
neighbour (SAN applies them to `(n, r + 2, k^2, H W)` tensors), in the patchwise one per
pixel; the position encoding's 2 -> 2 convolution counts once per image.
"""

import copy
import dataclasses
import importlib
import math
import types
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gsa_keras import operators
from gsa_keras import spec

# -- The architecture (Section 3.4, Table 1; SAN's `model/san.py`). -------------------------

STEM_FILTERS = 64
STAGE_WIDTHS = (64, 256, 512, 1024, 2048)
KERNEL_SIZES = (3, 7, 7, 7, 7)  # SAN's `kernels`: the footprint of each stage.
BLOCKS = {10: (2, 1, 2, 4, 1), 15: (3, 2, 3, 5, 2), 19: (3, 3, 4, 6, 3)}
OPERATORS = ("pairwise", "patchwise")  # SAN's `sa_type` 0 and 1.
SHARE_PLANES = 8  # Output channels per attention-weight channel.
RELATION_REDUCTION = 16  # Relation channels: the block's width / 16.
BOTTLENECK_REDUCTION = 4  # The attention's output channels: the block's width / 4.
INPUT_SIZE = 224  # SAN's ImageNet resolution.
# SAN initialises nothing itself, so its kernels start as PyTorch's defaults for
# `Conv2d` and `Linear` (He uniform with a = sqrt(5)): uniform in +-1/sqrt(fan_in), i.e.
# variance 1/(3 fan_in). A config, not an instance, so that every layer makes its own
# (an unseeded tf_keras initializer instance repeats its values).
SAN_KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                          "config": {"scale": 1.0 / 3.0, "mode": "fan_in",
                                     "distribution": "uniform"}}

# Table 2 of the paper (also SAN's README), ImageNet at 224x224, 1000 classes: top-1
# accuracy (%), parameters (millions) and multiply-adds (billions, "FLOPs" there).
SAN_NETWORKS = {
    "san10_pairwise": {"depth": 10, "operator": "pairwise", "top1": 74.9,
                       "params_m": 10.5, "gmacs": 2.2},
    "san10_patchwise": {"depth": 10, "operator": "patchwise", "top1": 77.1,
                        "params_m": 11.8, "gmacs": 1.9},
    "san15_pairwise": {"depth": 15, "operator": "pairwise", "top1": 76.6,
                       "params_m": 14.1, "gmacs": 3.0},
    "san15_patchwise": {"depth": 15, "operator": "patchwise", "top1": 78.0,
                        "params_m": 16.2, "gmacs": 2.6},
    "san19_pairwise": {"depth": 19, "operator": "pairwise", "top1": 76.9,
                       "params_m": 17.6, "gmacs": 3.8},
    "san19_patchwise": {"depth": 19, "operator": "patchwise", "top1": 78.2,
                        "params_m": 20.5, "gmacs": 3.3},
}


def minimum_input_size(kernel_sizes: Sequence[int] = KERNEL_SIZES) -> int:
  """The smallest input side SAN's stages can run on: stage `s` (1-based) sees the
  input's side floor-divided by `2^s` and needs more than `k_s // 2` pixels there
  (reflection padding). 128 for SAN's footprints (3, 7, 7, 7, 7)."""
  return max((k // 2 + 1) * 2 ** stage for stage, k in enumerate(kernel_sizes, start=1))


def _check_choice(value, argument, choices):
  if value not in choices:
    raise ValueError(f"`{argument}` must be one of {list(choices)}, got {value!r}.")
  return value


def check_input_size(height, width, depth: int = 10,
                     narrow_footprints: bool = False) -> None:
  """Raises ValueError unless `height x width` inputs fit SAN's footprints, or with
  `narrow_footprints` unless every stage has at least one pixel (inputs of 32x32 and
  more). Sizes that are None, unknown until run time, are checked when the layers
  run."""
  shown = "x".join("?" if size is None else str(size) for size in (height, width))
  stages = len(KERNEL_SIZES)
  for stage, kernel_size in enumerate(KERNEL_SIZES, start=1):
    reach = 0 if narrow_footprints else kernel_size // 2
    sides = [size // 2 ** stage for size in (height, width) if size is not None]
    if not sides or min(sides) > reach:
      continue
    if narrow_footprints:
      raise ValueError(
          f"SAN{depth} needs inputs of at least {2 ** stages}x{2 ** stages} pixels: "
          f"stage {stage} sees the input downsampled {2 ** stage} times; a {shown} input "
          f"leaves {min(sides)} pixels there.")
    raise ValueError(
        f"SAN{depth} needs inputs of at least {minimum_input_size()}x"
        f"{minimum_input_size()} pixels: stage {stage} runs a {kernel_size}x"
        f"{kernel_size} footprint on the input downsampled {2 ** stage} times, and "
        f"reflection padding needs more than {reach} pixels per side there; a {shown} "
        f"input leaves {min(sides)}. Pass `narrow_footprints=True` to narrow the "
        f"footprints to small maps (no longer SAN's published network).")


# -- The layer graph. -------------------------------------------------------------------------


@dataclasses.dataclass
class SANBuilder:
  """Builds SAN's layer graph with one Keras (Section 3.4, Table 1).

  Attributes:
    keras: `keras` (Keras 3) or `tf_keras`.
    depth: 10, 15 or 19 (SAN10, SAN15, SAN19).
    operator: 'pairwise' (eq. 2) or 'patchwise' (eq. 4).
    kernel_regularizer: regularizer of every convolution, attention and dense kernel,
      or None.
    kernel_initializer: initializer of the same kernels (a name or a config; None:
      SAN's, `SAN_KERNEL_INITIALIZER`).
    norm_momentum: every batch norm's momentum (Keras's convention: 0.9 is PyTorch's
      0.1, SAN's).
    norm_epsilon: every batch norm's epsilon (SAN's 1e-5).
    narrow_footprints: give a stage whose map is smaller than its footprint allows the
      widest footprint that fits (`operators.san_kernel_size`) instead of SAN's.
  """

  keras: types.ModuleType
  depth: int = 10
  operator: str = "pairwise"
  kernel_regularizer: Any = None
  kernel_initializer: Any = None
  norm_momentum: float = spec.default("norm_momentum")
  norm_epsilon: float = spec.default("norm_epsilon")
  narrow_footprints: bool = False

  def __post_init__(self):
    _check_choice(self.depth, "depth", sorted(BLOCKS))
    _check_choice(self.operator, "operator", OPERATORS)
    spec.check_bool(self.narrow_footprints, "narrow_footprints")

  def _initializer(self):
    """A fresh copy of the kernels' initializer argument for one layer."""
    if self.kernel_initializer is None:
      return copy.deepcopy(SAN_KERNEL_INITIALIZER)
    return self.kernel_initializer

  @property
  def blocks(self) -> Tuple[int, ...]:
    """Blocks per stage."""
    return BLOCKS[self.depth]

  def _attention_class(self):
    module = operators.layer_module(self.keras)
    return (module.PairwiseSelfAttention if self.operator == "pairwise"
            else module.PatchwiseSelfAttention)

  def _conv(self, x, filters, name, use_bias):
    return self.keras.layers.Conv2D(
        filters, 1, use_bias=use_bias, kernel_initializer=self._initializer(),
        kernel_regularizer=self.kernel_regularizer, name=name)(x)

  def _norm_relu(self, x, name):
    """Batch norm `{name}_norm`, then ReLU `{name}_relu`."""
    x = self.keras.layers.BatchNormalization(
        momentum=self.norm_momentum, epsilon=self.norm_epsilon, name=f"{name}_norm")(x)
    return self.keras.layers.ReLU(name=f"{name}_relu")(x)

  def stem(self, inputs):
    """SAN's `conv_in`, `bn_in` and ReLU: a 1x1 convolution to 64 channels."""
    x = self._conv(inputs, STEM_FILTERS, "stem_conv", use_bias=False)
    return self._norm_relu(x, "stem")

  def block(self, inputs, width, kernel_size, name):
    """SAN's pre-activation `Bottleneck` of width `width`: BN, ReLU, self-attention to
    `width / 4` channels with a `kernel_size` footprint, BN, ReLU, a 1x1 convolution
    back to `width` (with bias), plus the input."""
    x = self.keras.layers.BatchNormalization(
        momentum=self.norm_momentum, epsilon=self.norm_epsilon,
        name=f"{name}_input_norm")(inputs)
    x = self.keras.layers.ReLU(name=f"{name}_input_relu")(x)
    x = self._attention_class()(
        width // BOTTLENECK_REDUCTION, kernel_size=kernel_size, share_planes=SHARE_PLANES,
        relation_reduction=RELATION_REDUCTION, kernel_initializer=self._initializer(),
        kernel_regularizer=self.kernel_regularizer, norm_momentum=self.norm_momentum,
        norm_epsilon=self.norm_epsilon, name=f"{name}_attention")(x)
    x = self._norm_relu(x, f"{name}_attention")
    x = self._conv(x, width, f"{name}_output_conv", use_bias=True)
    return self.keras.layers.Add(name=f"{name}_add")([inputs, x])

  def stage(self, inputs, number):
    """Stage `number` (1-based; SAN's `layer{number - 1}`): 2x2 max pool at stride 2,
    1x1 transition convolution, the blocks, BN and ReLU."""
    width, kernel_size = STAGE_WIDTHS[number - 1], KERNEL_SIZES[number - 1]
    name = f"stage{number}"
    x = self.keras.layers.MaxPool2D(pool_size=2, strides=2, name=f"{name}_pool")(inputs)
    x = self._conv(x, width, f"{name}_transition_conv", use_bias=False)
    if self.narrow_footprints:
      kernel_size = operators.san_kernel_size(x.shape[1:3], kernel_size)
    for block in range(1, self.blocks[number - 1] + 1):
      x = self.block(x, width, kernel_size, f"{name}_block{block}")
    return self._norm_relu(x, f"{name}_output")

  def endpoints(self, inputs) -> Dict[str, Any]:
    """{level: feature map} of the stages' outputs, `'1'..'5'` (strides 2 to 32)."""
    x = self.stem(inputs)
    endpoints = {}
    for number in range(1, len(STAGE_WIDTHS) + 1):
      x = self.stage(x, number)
      endpoints[str(number)] = x
    return endpoints

  def head(self, features, num_classes):
    """SAN's `avgpool` and `fc`: global average pooling, dense to logits."""
    x = self.keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    return self.keras.layers.Dense(
        num_classes, kernel_initializer=self._initializer(),
        kernel_regularizer=self.kernel_regularizer, name="head_logits")(x)


def build_san(keras,
              depth: int = 10,
              operator: str = "pairwise",
              *,
              num_classes: int = 1000,
              input_shape: Optional[Sequence[Optional[int]]] = None,
              input_tensor=None,
              include_top: bool = True,
              kernel_regularizer: Any = None,
              kernel_initializer: Any = None,
              norm_momentum: float = spec.default("norm_momentum"),
              norm_epsilon: float = spec.default("norm_epsilon"),
              narrow_footprints: bool = False,
              name: Optional[str] = None):
  """SAN10, SAN15 or SAN19 with pairwise or patchwise self-attention (Section 3.4,
  Table 1; counts in Table 2) as a functional model of `keras`.

  Args:
    keras: `keras` (Keras 3) or `tf_keras`.
    depth: 10, 15 or 19.
    operator: 'pairwise' or 'patchwise'.
    num_classes: the dense head's outputs (logits) when `include_top`.
    input_shape: `(height, width, channels)`; default `(224, 224, 3)`. Height and width
      may be None (checked when the layers run), else at least `minimum_input_size()`
      (128), or 32 with `narrow_footprints`.
    input_tensor: a Keras tensor to build on instead (its source inputs become the
      model's); overrides `input_shape`.
    include_top: with the head (global average pooling, dense), else the model ends at
      `stage5_output_relu`, the last stage's features (stride 32).
    kernel_regularizer: regularizer of every convolution, attention and dense kernel.
    kernel_initializer: initializer of every convolution, attention and dense kernel:
      a name or a config (an instance would be shared by every layer); default
      SAN's, PyTorch's (`SAN_KERNEL_INITIALIZER`).
    norm_momentum: every batch norm's momentum (Keras's convention, default 0.9).
    norm_epsilon: every batch norm's epsilon (default 1e-5).
    narrow_footprints: on inputs under 128x128, narrow the footprints of the stages
      whose maps are too small for them (`operators.san_kernel_size`) instead of
      raising; the network is then no longer SAN's published one. Sides unknown
      until run time are not narrowed.
    name: the model's name; default e.g. 'san10_pairwise'.

  Returns:
    The model.

  Raises:
    ValueError: an unknown depth or operator, a bad `num_classes`, or inputs smaller
      than SAN's footprints allow.
  """
  builder = SANBuilder(keras, depth, operator, kernel_regularizer=kernel_regularizer,
                       kernel_initializer=kernel_initializer,
                       norm_momentum=norm_momentum, norm_epsilon=norm_epsilon,
                       narrow_footprints=narrow_footprints)
  if include_top:
    spec.check_positive_int(num_classes, "num_classes")
  if input_tensor is None:
    inputs = keras.Input(shape=tuple(input_shape or (INPUT_SIZE, INPUT_SIZE, 3)),
                         name="images")
  else:
    inputs = input_tensor
  shape = tuple(inputs.shape)
  if len(shape) != 4:
    raise ValueError(f"SAN expects images of rank 4 (batch, height, width, channels), "
                     f"got shape {shape}.")
  check_input_size(shape[1], shape[2], depth, narrow_footprints)
  x = builder.endpoints(inputs)["5"]
  if include_top:
    x = builder.head(x, num_classes)
  model_inputs = (inputs if input_tensor is None
                  else keras.utils.get_source_inputs(input_tensor))
  return keras.Model(model_inputs, x, name=name or f"san{depth}_{operator}")


def build_published(keras, name: str, **kwargs):
  """The network `name` of `SAN_NETWORKS` (e.g. 'san10_pairwise'); `kwargs` go to
  `build_san`."""
  network = SAN_NETWORKS[_check_choice(name, "name", list(SAN_NETWORKS))]
  return build_san(keras, network["depth"], network["operator"], name=name, **kwargs)


# -- Counting by SAN's convention (`util/complexity.py`). ------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerCount:
  """One layer's trainable parameters and multiply-adds for one image."""
  name: str
  layer_type: str
  params: int
  macs: int


@dataclasses.dataclass(frozen=True)
class SANCount:
  """A model's trainable parameters and multiply-adds for one image, SAN's way."""
  params: int
  macs: int
  layers: List[LayerCount]


def _static(shape, layer) -> List[int]:
  """A tensor's shape without the batch axis, as ints; ValueError if one is unknown."""
  dims = list(shape)[1:]
  if any(d is None for d in dims):
    raise ValueError(f"Counting needs static shapes; layer {layer.name!r} sees "
                     f"{tuple(shape)}.")
  return [int(d) for d in dims]


def _conv_macs(layer, inputs, outputs):
  pixels = math.prod(outputs[:-1])
  per_pixel = math.prod(layer.kernel_size) * inputs[-1] * outputs[-1] // layer.groups
  return (per_pixel + (outputs[-1] if layer.use_bias else 0)) * pixels


def _attention_macs(layer, inputs, outputs, pairwise):
  """SAN's count of one `SAM` (`model/san.py`) with the hooks of `util/complexity.py`."""
  channels, relation = (int(d) for d in layer.phi_kernel.shape)
  filters = int(layer.beta_kernel.shape[1])
  gamma_in, gamma_hidden = (int(d) for d in layer.gamma_hidden_kernel.shape)
  gamma_out = int(layer.gamma_output_kernel.shape[1])
  window = layer.kernel_size ** 2
  pixels = math.prod(outputs[:-1])
  # conv1, conv2 (phi, psi) and conv3 (beta): 1x1 convolutions with biases.
  macs = (2 * (channels * relation + relation) + channels * filters + filters) * pixels
  # conv_w (gamma): BN and ReLU on its input, convolution without bias, BN and ReLU,
  # convolution with bias; per relation vector.
  gamma = (3 * gamma_in + gamma_in * gamma_hidden + 3 * gamma_hidden +
           gamma_hidden * gamma_out + gamma_out)
  if pairwise:
    vectors = window * pixels
    positions = int(layer.position_kernel.shape[0])
    macs += relation * vectors  # Subtraction2: phi(x_i) - psi(x_j).
    macs += positions * vectors  # Subtraction: p_i - p_j.
    macs += (positions * positions + positions) * pixels  # conv_p.
    # The softmax: not counted.
  else:
    vectors = pixels  # Unfold and ReflectionPad2d: not counted.
  macs += gamma * vectors
  macs += filters * window * pixels  # Aggregation.
  return macs


def _keras_of(model):
  """The Keras module `model` belongs to: `tf_keras` or `keras`."""
  return importlib.import_module(type(model).__module__.split(".")[0])


def _layer_macs(keras, layer) -> int:
  """One call's multiply-adds by SAN's convention (see the module's doc)."""
  from gsa_keras.layers import san

  layers = keras.layers
  if isinstance(layer, (layers.InputLayer, layers.Add, layers.Dropout, layers.Flatten,
                        layers.Reshape)):
    return 0  # Nothing to count; residual additions are not modules in SAN.
  inputs = _static(layer.input.shape, layer)
  outputs = _static(layer.output.shape, layer)
  if isinstance(layer, san.PairwiseSelfAttentionDefinition):
    return _attention_macs(layer, inputs, outputs, pairwise=True)
  if isinstance(layer, san.PatchwiseSelfAttentionDefinition):
    return _attention_macs(layer, inputs, outputs, pairwise=False)
  if isinstance(layer, layers.Conv2D):
    return _conv_macs(layer, inputs, outputs)
  if isinstance(layer, layers.Dense):
    return inputs[-1] * outputs[-1] * math.prod(outputs[:-1])  # Bias not counted.
  if isinstance(layer, layers.BatchNormalization):
    return (2 if layer.scale or layer.center else 1) * math.prod(inputs)
  if isinstance(layer, layers.ReLU):
    return math.prod(outputs)
  if isinstance(layer, layers.Activation):
    name = getattr(layer.activation, "__name__", "")
    return math.prod(outputs) if name == "relu" else 0  # Softmax, linear: not counted.
  if isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D,
                        layers.GlobalAveragePooling2D)):
    return math.prod(inputs)
  raise NotImplementedError(
      f"No multiply-add rule (SAN's convention) for layer {layer.name!r} of type "
      f"{type(layer).__name__}.")


def _layer_counts(keras, model) -> List[LayerCount]:
  counts = []
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      counts.extend(_layer_counts(keras, layer))
      continue
    params = sum(math.prod(int(d) for d in w.shape) for w in layer.trainable_weights)
    counts.append(LayerCount(layer.name, type(layer).__name__, params,
                             _layer_macs(keras, layer)))
  return counts


def count_params_and_macs(model) -> SANCount:
  """Trainable parameters and multiply-adds of a built SAN model for one image, as
  SAN's `tool/counter.py` counts them (the module's doc lists what counts).

  Works for functional models of either Keras whose layers are each called once, with
  static input sizes; a layer type without a rule raises NotImplementedError.
  """
  keras = _keras_of(model)
  layers = _layer_counts(keras, model)
  params = sum(math.prod(int(d) for d in w.shape) for w in model.trainable_weights)
  return SANCount(params=params, macs=sum(layer.macs for layer in layers), layers=layers)
