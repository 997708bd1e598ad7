"""The spatial operators of a bottleneck block, each registered once: Keras-free.

A residual group's 3x3 convolution is replaced by an attention module (Section 4);
which one is `Architecture.attention_variant`, a name in this registry. One `Operator`
record holds everything the package needs to know about an operator:

- `make_layer`: its layer, for either Keras (`Site` says where it goes);
- `count_flops`: its FLOP rule, used by `gsa_keras.flops` for the layer types it makes
  (`layer_types`); parameters are its layer's weights, which the counter reads;
- `check`: its own argument checks, run when an `Architecture` using it is made, and
  `needs_input_size`: whether the input size must be known to build it;
- `paper_rows`: the networks of `gsa_keras.paper` it reproduces.

The network builder, the FLOP counter, the benchmarks and the studies find operators
here; none of them compares `attention_variant` with a name. Built in: the GSA module
(Section 3) and its Table 4 ablations (family `GSA`, one layer class with switches),
Table 2's axial baseline, Table 3's local self-attention, and the 3x3 convolution
(`CONVOLUTION`, the builder's choice outside the attention groups, not an
`attention_variant`). Adding one is the math (`gsa_keras.ops`), the layer
(`gsa_keras.layers`) and one `register` call below (docs/contributing.md).

This module imports neither Keras nor TensorFlow: the layer classes are imported when
a layer is made.
"""

import contextlib
import dataclasses
import functools
import importlib
import math
import types
from typing import Any, Callable, Dict, Iterator, List, Mapping, Sequence, Tuple

from gsa_keras import paper
from gsa_keras import spec

# FLOP kinds, in the order tables show them (`gsa_keras.flops`).
MATMUL = "matmul"  # Convolutions and dense layers.
ATTENTION = "attention"  # Einsums and softmaxes inside attention modules.
ELEMENTWISE = "elementwise"  # Normalization, activations, additions, pooling.
KINDS = (MATMUL, ATTENTION, ELEMENTWISE)

# The built-in operators' names (and the GSA family's).
GSA = "gsa"
AXIAL = "axial"
LOCAL = "local"
CONVOLUTION = "conv3x3"
# Table 3's local attention ResNet-50 (Ramachandran et al. 2019): 7x7 neighbourhoods.
LOCAL_KERNEL_SIZE = 7
# SAN's operators (Zhao et al. 2020) at Table 3's footprint, in the GSA-ResNet structure.
SAN_PAIRWISE = "san_pairwise"
SAN_PATCHWISE = "san_patchwise"
SAN_KERNEL_SIZE = 7


@dataclasses.dataclass(frozen=True)
class Site:
  """Where an operator's layer goes: what its factory gets.

  Attributes:
    keras: `keras` (Keras 3) or `tf_keras`.
    filters: input and output channels (a bottleneck block's inner width).
    architecture: the network's `spec.Architecture`.
    name: the layer's name.
    strides: 2 where the block downsamples, for operators that do it themselves
      (`Operator.downsamples`); always 1 for the others.
    kernel_regularizer: a regularizer for every weight, or None.
    feature_size: the (height, width) of the layer's input where the builder knows it
      (entries None where it does not), for operators whose layer depends on it.
  """
  keras: Any
  filters: int
  architecture: spec.Architecture
  name: str
  strides: int = 1
  kernel_regularizer: Any = None
  feature_size: Tuple[Any, Any] = (None, None)

  @property
  def gsa_layers(self):
    """This Keras's GSA layers (`gsa_keras.layers.keras3` or `.tf_keras`)."""
    return layer_module(self.keras)


def _never(architecture) -> bool:
  del architecture
  return False


def _no_check(architecture, groups) -> None:
  del architecture, groups


@dataclasses.dataclass(frozen=True)
class Operator:
  """One registered operator.

  Attributes:
    name: the `attention_variant` that selects it.
    description: one line: what it computes and where the paper has it.
    make_layer: `Site -> layer`, for either Keras.
    layer_types: `keras module -> tuple of classes` the factory makes, so the FLOP
      counter knows which layers are this operator's.
    count_flops: `(layer, input_shape, output_shape) -> {kind: FLOPs}` for one image,
      kinds out of `KINDS`.
    check: `(architecture, attention groups) -> None`, raising ValueError naming the
      argument; the groups are the `spec.GroupSpec`s that use the operator.
    needs_input_size: `architecture -> bool`: whether the input size must be known
      when the network is built.
    paper_rows: names of `gsa_keras.paper.NETWORKS` it reproduces.
    family: operators that share a layer class with switches (`GSA` for Table 4).
    options: the family's switches for this operator.
    attention: False only for `CONVOLUTION`, which is not an `attention_variant`.
    downsamples: whether the layer downsamples itself (`Site.strides`); otherwise
      2x2 average pooling follows it where the block downsamples (Section 4).
    layer_suffix: its layer's name in a block, `group1_block1_<suffix>`.
  """
  name: str
  description: str
  make_layer: Callable[[Site], Any]
  layer_types: Callable[[Any], tuple]
  count_flops: Callable[..., Dict[str, int]]
  check: Callable[[spec.Architecture, Sequence[spec.GroupSpec]], None] = _no_check
  needs_input_size: Callable[[spec.Architecture], bool] = _never
  paper_rows: Tuple[str, ...] = ()
  family: str = ""
  options: Mapping[str, Any] = dataclasses.field(
      default_factory=lambda: types.MappingProxyType({}))
  attention: bool = True
  downsamples: bool = False
  layer_suffix: str = "attention"

  def layer(self, site: Site):
    """The operator's layer at `site`."""
    if site.strides != 1 and not self.downsamples:
      raise ValueError(f"Operator {self.name!r} does not downsample; the builder pools "
                       "after it.")
    return self.make_layer(site)


# -- The registry. ---------------------------------------------------------------------

_REGISTRY: Dict[str, Operator] = {}


def register(operator: Operator) -> Operator:
  """Adds `operator`; returns it. Raises ValueError for a taken name or an unknown
  paper row."""
  if operator.name in _REGISTRY:
    raise ValueError(f"An operator {operator.name!r} is already registered.")
  unknown = [row for row in operator.paper_rows if row not in paper.BY_NAME]
  if unknown:
    raise ValueError(f"Operator {operator.name!r}: no network {unknown} in "
                     "gsa_keras.paper.")
  _REGISTRY[operator.name] = operator
  return operator


def unregister(name: str) -> None:
  """Removes the operator `name` (KeyError if there is none)."""
  del _REGISTRY[name]


@contextlib.contextmanager
def registered(operator: Operator) -> Iterator[Operator]:
  """Registers `operator` for the duration of a `with` block."""
  register(operator)
  try:
    yield operator
  finally:
    _REGISTRY.pop(operator.name, None)


def names() -> Tuple[str, ...]:
  """The `attention_variant` names, in registration order."""
  return tuple(name for name, op in _REGISTRY.items() if op.attention)


def all_operators() -> Tuple[Operator, ...]:
  """Every registered operator, the convolution included, in registration order."""
  return tuple(_REGISTRY.values())


def get(name: str, argument: str = "attention_variant") -> Operator:
  """The attention operator `name`; raises ValueError naming `argument` otherwise."""
  operator = _REGISTRY.get(name) if isinstance(name, str) else None
  if operator is None or not operator.attention:
    raise ValueError(f"`{argument}` must be one of {list(names())}, got {name!r}.")
  return operator


def find(name: str) -> Operator:
  """Any registered operator, the convolution included."""
  if name not in _REGISTRY:
    raise ValueError(f"No operator {name!r}; registered: {list(_REGISTRY)}.")
  return _REGISTRY[name]


def convolution() -> Operator:
  """The 3x3 convolution: the spatial operator outside the attention groups."""
  return _REGISTRY[CONVOLUTION]


def family_options(family: str) -> Mapping[str, Mapping[str, Any]]:
  """{name: switches} of the operators of `family` (e.g. `GSA`: Table 4)."""
  return types.MappingProxyType({
      op.name: dict(op.options) for op in _REGISTRY.values() if op.family == family})


def flop_rules(keras_module) -> List[Tuple[tuple, Callable[..., Dict[str, int]]]]:
  """[(layer classes, FLOP rule)] of every operator, the latest registered first (so
  that an operator registered later for a subclass takes precedence)."""
  return [(op.layer_types(keras_module), op.count_flops)
          for op in reversed(_REGISTRY.values())]


def layer_module(keras_module):
  """The module of GSA layers bound to `keras_module` (Keras 3 or tf_keras)."""
  flavour = "tf_keras" if keras_module.__name__ == "tf_keras" else "keras3"
  return importlib.import_module(f"gsa_keras.layers.{flavour}")


# -- Checks shared by the attention operators. ----------------------------------------------


def _check_heads(architecture: spec.Architecture,
                 groups: Sequence[spec.GroupSpec]) -> None:
  """`num_heads` divides the channels of every attention group."""
  for group in groups:
    if group.filters % architecture.num_heads:
      raise ValueError(
          f"`num_heads`={architecture.num_heads} must divide the channels of every "
          f"attention group, but residual group {group.number} of width_variant="
          f"{architecture.width_variant!r} has {group.filters} channels.")


def _global_positions(architecture: spec.Architecture) -> bool:
  """Global positional attention sizes its relative embeddings by the feature size."""
  return architecture.max_relative_shift is None


# -- FLOP rules: 2 per multiply-accumulate, one image. -------------------------------------


def _elements(shape) -> int:
  return math.prod(int(d) for d in shape[1:])


def _attention_dims(layer, input_shape):
  _, height, width, in_channels = (int(d) if d is not None else None
                                   for d in input_shape)
  if height is None or width is None:
    raise ValueError(f"Layer {layer.name!r} has unknown spatial input size "
                     f"{tuple(input_shape)}; FLOPs need a static input size.")
  key_channels = layer.key_channels or in_channels
  return height * width, height, width, in_channels, key_channels, layer.filters


def conv_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """A convolution: 2 per multiply-accumulate, plus one per output for a bias."""
  kernel_h, kernel_w = layer.kernel_size
  groups = getattr(layer, "groups", 1)
  macs_per_output = kernel_h * kernel_w * int(input_shape[-1]) // groups
  outputs = _elements(output_shape)
  return {MATMUL: 2 * macs_per_output * outputs + (outputs if layer.use_bias else 0)}


# FLOPs per query element of the optional query normalisation: 'softmax' exp, sum and
# divide; 'l2' square and sum (the norm), multiply by its inverse and by the scale.
_QUERY_NORMALIZATION_FLOPS = types.MappingProxyType({None: 0, "softmax": 3, "l2": 4})


def _gsa_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """Appendix B, eqs. 3-8, for one `GlobalSelfAttention` call: the fused K/Q/V
  projection (eq. 3), softmax(K)^T V and Q C (eq. 4), Q P and S V along columns and
  rows (eq. 7), the batch normalization between them and the final sum (eq. 8), and
  the optional query normalisation. The relative-to-absolute lookup (eqs. 5-6) is a
  gather: no FLOPs."""
  del output_shape
  pixels, height, width, d_in, d_k, d_v = _attention_dims(layer, input_shape)
  heads = layer.num_heads
  projected = (d_k if layer.use_content else 0) + d_k + d_v
  attention = 2 * pixels * d_in * projected  # eq. 3
  attention += _QUERY_NORMALIZATION_FLOPS[layer.query_normalization] * pixels * d_k
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


def _axial_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """Table 2's baseline: per axis, softmax(q.k + q.r) V (q.k and q.r, their sum, the
  softmax as exp, sum and divide, the weighted sum), then BN between the axes."""
  del output_shape
  pixels, height, width, d_in, d_k, d_v = _attention_dims(layer, input_shape)
  heads = layer.num_heads
  attention = 2 * pixels * d_in * (2 * d_k + d_v)  # eq. 3 with keys.
  for length in (height, width):
    logits = pixels * length * heads
    attention += 2 * 2 * pixels * length * d_k + logits + 3 * logits
    attention += 2 * pixels * length * d_v
  return {ATTENTION: attention, ELEMENTWISE: 2 * pixels * d_v}


def _local_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """Table 3's local baseline: softmax(q.k + q.r) V over each pixel's k x k window.

  The projection, q.k over the window, the relative logits as the layer computes them
  (q's halves against the k row-offset and k column-offset embeddings, then one
  addition per window logit), the sum of the two logits, the softmax (3 per logit:
  exp, sum, divide) and the weighted sum. Every window is counted whole, border pixels
  too (masked neighbours are computed, then dropped by the softmax); gathering the
  neighbourhood is a copy: no FLOPs.
  """
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


def _san_flops(layer, input_shape, output_shape) -> Dict[str, int]:
  """SAN's pairwise or patchwise self-attention (Zhao et al. 2020, eqs. 2 and 4), all
  that the layer computes, 2 per multiply-accumulate: the 1x1 projections phi, psi
  (relation channels) and beta (outputs) with their biases; the relation (pairwise: one
  subtraction per relation channel and neighbour, and the position differences; patchwise:
  a concatenation, no FLOPs); gamma (batch norm as scale and shift, ReLU, 1x1
  convolution, batch norm, ReLU, 1x1 convolution with bias); the pairwise softmax (exp,
  sum, divide) and the aggregation, one multiply-accumulate per neighbour and output
  channel. The position encoding of the pixel grid is computed once per image size and
  not counted; gathering footprints is a copy."""
  del output_shape
  _, height, width, channels = (int(d) if d is not None else None for d in input_shape)
  if height is None or width is None:
    raise ValueError(f"Layer {layer.name!r} has unknown spatial input size "
                     f"{tuple(input_shape)}; FLOPs need a static input size.")
  pixels, footprint = height * width, layer.kernel_size ** 2
  relation, weights = channels // layer.relation_reduction, layer.weight_channels
  projected = 2 * relation + layer.filters
  attention = 2 * pixels * channels * projected + pixels * projected  # phi, psi, beta
  if layer.pairwise:
    gamma_in, gamma_hidden, gamma_out = relation + 2, relation, weights
    per_pixel = footprint  # gamma runs on every (pixel, neighbour) pair
    attention += pixels * footprint * (relation + 2)  # the subtractions
    attention += 3 * pixels * footprint * weights  # softmax over the footprint
  else:
    gamma_in, gamma_hidden = relation * (footprint + 1), weights
    gamma_out, per_pixel = weights * footprint, 1  # gamma runs once per pixel
  attention += pixels * per_pixel * (2 * gamma_in * gamma_hidden
                                     + 2 * gamma_hidden * gamma_out + gamma_out)
  elementwise = 3 * pixels * per_pixel * (gamma_in + gamma_hidden)  # BN (2) + ReLU (1)
  attention += 2 * pixels * footprint * layer.filters  # the aggregation
  return {ATTENTION: attention, ELEMENTWISE: elementwise}


# -- Layer factories. -----------------------------------------------------------------------


def _axial_arguments(site: Site) -> Dict[str, Any]:
  """What the GSA module and the axial baseline take from the architecture."""
  architecture = site.architecture
  return dict(
      filters=site.filters, num_heads=architecture.num_heads,
      max_relative_shift=architecture.max_relative_shift,
      kernel_initializer=architecture.kernel_initializer,
      kernel_regularizer=site.kernel_regularizer,
      norm_momentum=architecture.norm_momentum,
      norm_epsilon=architecture.norm_epsilon,
      use_sync_bn=architecture.use_sync_bn, name=site.name)


def _gsa_layer(site: Site, **switches):
  return site.gsa_layers.GlobalSelfAttention(
      **_axial_arguments(site), **switches,
      query_normalization=site.architecture.query_normalization)


def _check_no_query_normalization(architecture: spec.Architecture,
                                  groups: Sequence[spec.GroupSpec]) -> None:
  """Heads; the query normalisation is the GSA module's option only."""
  _check_heads(architecture, groups)
  if architecture.query_normalization is not None:
    raise ValueError(
        f"`query_normalization` applies to the GSA module's queries only, not to "
        f"attention_variant={architecture.attention_variant!r}; leave it None, got "
        f"{architecture.query_normalization!r}.")


def _gsa_types(keras_module) -> tuple:
  return (layer_module(keras_module).GlobalSelfAttention,)


def _axial_layer(site: Site):
  return site.gsa_layers.AxialContentPositionalAttention(**_axial_arguments(site))


def _axial_types(keras_module) -> tuple:
  return (layer_module(keras_module).AxialContentPositionalAttention,)


def _local_layer(site: Site):
  return site.gsa_layers.LocalSelfAttention(
      site.filters, num_heads=site.architecture.num_heads,
      kernel_size=LOCAL_KERNEL_SIZE,
      kernel_initializer=site.architecture.kernel_initializer,
      kernel_regularizer=site.kernel_regularizer, name=site.name)


def _local_types(keras_module) -> tuple:
  return (layer_module(keras_module).LocalSelfAttention,)


def _check_local(architecture: spec.Architecture,
                 groups: Sequence[spec.GroupSpec]) -> None:
  """Heads; no `max_relative_shift`; even key channels per head (row and column
  halves); no query normalisation."""
  _check_no_query_normalization(architecture, groups)
  if architecture.max_relative_shift is not None:
    raise ValueError(
        f"`max_relative_shift` does not apply to attention_variant={LOCAL!r} (its "
        f"reach is the {LOCAL_KERNEL_SIZE}x{LOCAL_KERNEL_SIZE} neighbourhood); leave "
        f"it None, got {architecture.max_relative_shift!r}.")
  for group in groups:
    spec.check_local_key_dim(
        group.filters // architecture.num_heads,
        f"`num_heads`={architecture.num_heads} on residual group {group.number}'s "
        f"{group.filters} channels")


def san_kernel_size(feature_size, kernel_size: int = SAN_KERNEL_SIZE) -> int:
  """The footprint of SAN's operators at a feature map of `feature_size`:
  `kernel_size` (default `SAN_KERNEL_SIZE`, as in the GSA-ResNet structure), narrowed
  where the map is too small for reflection padding, which mirrors at most size - 1
  pixels (5x5 on 3x3 maps, 3x3 on 2x2 maps, 1x1 on 1x1 maps); `kernel_size` where the
  size is unknown."""
  known = [int(size) for size in feature_size if size is not None]
  if not known:
    return kernel_size
  return max(1, min(kernel_size, 2 * min(known) - 1))


def _san_layer(site: Site, layer_class: str):
  return getattr(site.gsa_layers, layer_class)(
      site.filters, kernel_size=san_kernel_size(site.feature_size),
      kernel_initializer=site.architecture.kernel_initializer,
      kernel_regularizer=site.kernel_regularizer,
      norm_momentum=site.architecture.norm_momentum,
      norm_epsilon=site.architecture.norm_epsilon,
      use_sync_bn=site.architecture.use_sync_bn, name=site.name)


def _san_types(keras_module) -> tuple:
  layers = layer_module(keras_module)
  return (layers.PairwiseSelfAttention, layers.PatchwiseSelfAttention)


def _check_san(architecture: spec.Architecture,
               groups: Sequence[spec.GroupSpec]) -> None:
  """No query normalisation or `max_relative_shift` (the GSA module's options); every
  attention group's channels a multiple of the 8 output channels per weight channel and
  at least 16 (one relation channel per 16 channels)."""
  for argument in ("query_normalization", "max_relative_shift"):
    if getattr(architecture, argument) is not None:
      raise ValueError(
          f"`{argument}` does not apply to attention_variant="
          f"{architecture.attention_variant!r} (SAN's operators); leave it None, got "
          f"{getattr(architecture, argument)!r}.")
  for group in groups:
    if group.filters % 8 or group.filters < 16:
      raise ValueError(
          f"attention_variant={architecture.attention_variant!r} needs at least 16 "
          f"channels, a multiple of 8, in every attention group; residual group "
          f"{group.number} of width_variant={architecture.width_variant!r} has "
          f"{group.filters}.")


def _convolution_layer(site: Site):
  return site.keras.layers.Conv2D(
      site.filters, 3, strides=site.strides, padding="same", use_bias=False,
      kernel_initializer=site.architecture.kernel_initializer,
      kernel_regularizer=site.kernel_regularizer, name=site.name)


def _convolution_types(keras_module) -> tuple:
  return (keras_module.layers.Conv2D,)


# -- The built-in operators. ------------------------------------------------------------------

register(Operator(
    name=CONVOLUTION,
    description="3x3 convolution, strided where the block downsamples (ResNet v1.5): "
                "the convolutional baselines (Table 6)",
    make_layer=_convolution_layer, layer_types=_convolution_types,
    count_flops=conv_flops, paper_rows=("ResNet-38", "ResNet-50", "ResNet-101"),
    attention=False, downsamples=True, layer_suffix="conv2"))

# The GSA module and Table 4's ablations: one layer class, switches for its terms.
_GSA_FAMILY = (
    (GSA, "the GSA module: content, column and row attention (Section 3)",
     dict(use_content=True, use_column=True, use_row=True),
     ("GSA-ResNet-38", "GSA-ResNet-50", "GSA-ResNet-101", "GSA-M-ResNet-50",
      "GSA-ResNet-50, groups 2-4", "GSA-ResNet-50, groups 3-4", "GSA-ResNet-50, group 4")),
    ("positional", "column and row attention only (Table 4 row 2, Table 2 row 3)",
     dict(use_content=False, use_column=True, use_row=True), ("Positional-ResNet-50",)),
    ("content_column", "content and column attention (Table 4 row 3)",
     dict(use_content=True, use_column=True, use_row=False),
     ("Content-Column-ResNet-50",)),
    ("content_row", "content and row attention (Table 4 row 4)",
     dict(use_content=True, use_column=False, use_row=True), ("Content-Row-ResNet-50",)),
    ("column", "column attention only (Table 4 row 5)",
     dict(use_content=False, use_column=True, use_row=False), ("Column-ResNet-50",)),
    ("row", "row attention only (Table 4 row 6)",
     dict(use_content=False, use_column=False, use_row=True), ("Row-ResNet-50",)),
    ("content", "content attention only (Table 4 row 7)",
     dict(use_content=True, use_column=False, use_row=False), ("Content-ResNet-50",)),
)
for _name, _description, _switches, _rows in _GSA_FAMILY:
  register(Operator(
      name=_name, description=_description,
      make_layer=functools.partial(_gsa_layer, **_switches), layer_types=_gsa_types,
      count_flops=_gsa_flops, check=_check_heads, needs_input_size=_global_positions,
      paper_rows=_rows, family=GSA, options=types.MappingProxyType(_switches)))

register(Operator(
    name=AXIAL,
    description="axial content and positional attention: softmax over q.k + q.r along "
                "the column, then the row (Table 2 row 2)",
    make_layer=_axial_layer, layer_types=_axial_types, count_flops=_axial_flops,
    check=_check_no_query_normalization, needs_input_size=_global_positions,
    paper_rows=("Axial-ResNet-50",)))

register(Operator(
    name=LOCAL,
    description=f"local self-attention over {LOCAL_KERNEL_SIZE}x{LOCAL_KERNEL_SIZE} "
                "neighbourhoods (Ramachandran et al. 2019; Table 3)",
    make_layer=_local_layer, layer_types=_local_types, count_flops=_local_flops,
    check=_check_local, paper_rows=("Local-ResNet-50",)))

for _name, _layer_class, _description in (
    (SAN_PAIRWISE, "PairwiseSelfAttention",
     "SAN's pairwise self-attention (Zhao et al. 2020, eq. 2): a softmax over the "
     "footprint of gamma(phi(x_i) - psi(x_j), p_i - p_j), weights shared by every 8th "
     "channel"),
    (SAN_PATCHWISE, "PatchwiseSelfAttention",
     "SAN's patchwise self-attention (Zhao et al. 2020, eq. 4): gamma of phi(x_i) and "
     "psi over the whole footprint gives every neighbour's weight, no softmax"),
):
  register(Operator(
      name=_name,
      description=f"{_description}; {SAN_KERNEL_SIZE}x{SAN_KERNEL_SIZE} footprints, "
                  "reflection-padded, narrower on maps under 4x4 (`san_kernel_size`)",
      make_layer=functools.partial(_san_layer, layer_class=_layer_class),
      layer_types=_san_types, count_flops=_san_flops, check=_check_san))
