"""The network as data, and every argument check: Keras-free, TensorFlow-free.

`Architecture` is every option of a GSA-ResNet, each with its default and a one-line
doc, written once here. The builders take it whole: the network builder
(`gsa_keras.network`), the Model Garden backbone (`gsa_keras.backbones`, whose YAML
config `gsa_keras.configs.backbones.GSAResNet` is derived from it), the Keras models
(`gsa_keras.applications`, whose signatures and docstrings are made from it) and the
FLOP counter's command (`gsa_keras.flops`, one flag per option). It checks itself when
it is made, before anything is built.

The network is the paper's (Section 4, "Model"): a ResNet whose bottleneck 3x3
convolutions are replaced by attention modules in the residual groups listed in
`attention_groups` (Table 5), with 2x2 average pooling after the first attention
module of groups 2, 3 and 4. Which module is `attention_variant`: a name in the
operator registry (`gsa_keras.operators`): GSA (Section 3), its Table 4 ablations,
Table 2's axial baseline, Table 3's local self-attention, or one registered later.
"""

import dataclasses
import textwrap
import types
import typing
from typing import Any, Dict, Optional, Sequence, Tuple

# -- The ResNet structure. ---------------------------------------------------------------

# Bottleneck blocks per residual group. 26 and 38 are Ramachandran et al. (2019)'s
# depths; 50, 101 and 152 are He et al. (2016)'s.
BLOCK_REPEATS = types.MappingProxyType({
    26: (1, 2, 4, 1),
    38: (2, 3, 5, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
})
NUM_GROUPS = 4
RESIDUAL_GROUPS = tuple(range(1, NUM_GROUPS + 1))
# Minimal input-size divisor: the stem and groups 2-4 downsample by 2**5 in total.
INPUT_SIZE_DIVISOR = 32
STEM_TYPES = ("v0", "v1")
# Normalisations the GSA module may apply to its queries (`gsa_keras.ops.attention.
# normalize_queries`); None is the paper's module.
QUERY_NORMALIZATIONS = (None, "softmax", "l2")

_STEM_FILTERS = 64
_INNER_FILTERS = (64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class Width:
  """Channel widths: inner = base * scale, block output = inner * expansion."""
  expansion: int
  scale: float


# "m_resnet" is Table 3's M-ResNet-50: block input and output channels halved
# (expansion 4 -> 2) and every layer's filters scaled by 1.125.
WIDTH_VARIANTS = types.MappingProxyType({
    "standard": Width(expansion=4, scale=1.0),
    "m_resnet": Width(expansion=2, scale=1.125),
})


# -- Every option of the network, once. -----------------------------------------------------


def _option(default, doc: str, training_only: bool = False):
  """A field of `Architecture`: its default, its one-line doc, and whether it changes
  only how the network trains, not what trained weights compute."""
  return dataclasses.field(default=default,
                           metadata={"doc": doc, "training_only": training_only})


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A GSA-ResNet: every option of the network, checked when made.

  `Architecture(model_id=26, attention_groups=(3, 4))` is a GSA-ResNet-26 with GSA in
  residual groups 3 and 4 (Table 5); `dataclasses.replace` (or `replace`) makes a
  variant of one. Each field's doc is `OPTION_DOCS[name]`; the comment above each
  default says why it is the default. A bad value raises a ValueError naming the
  field; `validate` also checks an input size.
  """

  # The paper's main network: Tables 2, 4 and 5 and most of Table 3 are ResNet-50.
  model_id: int = _option(
      50, "Depth: 26 or 38 (Ramachandran et al. 2019), 50, 101 or 152 (He et al. "
      "2016); `BLOCK_REPEATS` gives the blocks per residual group.")
  # He et al.'s widths, the paper's main structure.
  width_variant: str = _option(
      "standard", "'standard', or 'm_resnet' for Table 3's M-ResNet (block input and "
      "output channels halved, every layer's filters scaled by 1.125).")
  # Section 4: every 3x3 convolution is replaced; Table 5 varies it.
  attention_groups: Tuple[int, ...] = _option(
      RESIDUAL_GROUPS, "Residual groups (1..4) whose 3x3 convolutions are attention "
      "modules (Table 5); empty for the convolutional ResNet of the same depth.")
  # The paper's module.
  attention_variant: str = _option(
      "gsa", "The attention operator, a name in `gsa_keras.operators`: 'gsa', a Table "
      "4 ablation, Table 2's 'axial', Table 3's 'local' (7x7), or one registered there.")
  # Section 4: "we use 8 heads".
  num_heads: int = _option(
      8, "Attention heads per module; must divide every attention group's channels.")
  # The paper's attention is global (Appendix B: L = max(h, w)).
  max_relative_shift: Optional[int] = _option(
      None, "`L` of Appendix B eq. 5, the farthest relative offset positional "
      "attention sees; None is global (the input size must then be known).")
  # He et al.'s stem, which the paper's parameter counts assume (Table 6).
  stem_type: str = _option(
      "v0", "'v0': a 7x7 convolution and a max pool (He et al.); 'v1': three 3x3 "
      "convolutions and a max pool (ResNet-D).")
  # The paper trains without stochastic depth.
  stochastic_depth_drop_rate: float = _option(
      0.0, "Stochastic depth drop rate of residual group 4's blocks, in [0, 1); group "
      "g's is the rate times (g + 1) / 5 (the Model Garden's schedule); 0 is off.",
      training_only=True)
  # Without it the initial gradients of GSA networks are 32-87x the convolutional
  # ResNet's and SGD at the paper's rate diverges (tests/test_backbone.py,
  # test_zero_init_residual_tames_the_initial_gradients); the digits runs reach
  # 98.9-99.4% with it (docs/model_garden.md). The paper does not say.
  zero_init_residual: bool = _option(
      True, "Start each residual branch's last batch norm at gamma = 0 (Goyal et al. "
      "2017), so every block starts as its shortcut.", training_only=True)
  # He et al.'s and the paper's.
  activation: str = _option(
      "relu", "Activation (a Keras name) after the stem's and the blocks' inner batch "
      "norms and after each residual sum.")
  # One device; the TPU experiments set it.
  use_sync_bn: bool = _option(
      False, "Synchronise batch norm statistics across replicas, the attention "
      "modules' inner batch norm included.", training_only=True)
  # The registered experiments' and the TPU ResNet recipe's. A short fit evaluates on
  # moving statistics that have followed the data (about 1 / (1 - momentum) = 10
  # steps): the Keras models' six-epoch digits fit reaches 94.2-98.3% with it
  # (docs/models.md); at Keras's 0.99 the statistics barely move in a hundred steps
  # (docs/layers.md, "A short fit").
  norm_momentum: float = _option(
      0.9, "Momentum of every batch norm's moving statistics, the attention modules' "
      "inner one included.", training_only=True)
  # The registered experiments' and the TPU ResNet recipe's, with which the digits
  # default reaches 98.9-99.4% (docs/training.md).
  norm_epsilon: float = _option(
      1e-5, "Epsilon of every batch norm, the attention modules' inner one included.")
  # The Model Garden ResNet's: fan-in variance scaling.
  kernel_initializer: str = _option(
      "VarianceScaling", "Initializer of every convolution kernel and attention weight "
      "(a Keras initializer name).", training_only=True)

  # The paper's module: Section 3.1 leaves the queries unnormalised on purpose (softmax
  # on them cost 1% ImageNet top-1). Unnormalised, a module is cubic in its input's
  # scale in evaluation mode (study_results/input_scale/); 'l2' makes it linear, 'softmax'
  # about x^1.1-1.7 (tests/test_query_normalization.py). Not yet measured on the
  # Fashion-MNIST schedule (official_configs/fashion_mnist/gsa_query_*.yaml).
  query_normalization: Optional[str] = _option(
      None, "Normalisation of the GSA module's queries before both branches: None "
      "(the paper's), 'softmax' over each head's channels, or 'l2' (unit norm times a "
      "learned per-head scale); GSA operators only.")

  def __post_init__(self):
    if isinstance(self.attention_groups, (list, tuple)):
      object.__setattr__(self, "attention_groups", tuple(self.attention_groups))
    self._check()

  # -- Checks. ---------------------------------------------------------------------------

  def _check(self):
    """Raises ValueError naming the first bad field."""
    if not _is_int(self.model_id) or self.model_id not in BLOCK_REPEATS:
      raise ValueError(f"`model_id` must be one of {_choices(BLOCK_REPEATS)}, "
                       f"got {self.model_id!r}.")
    if self.width_variant not in WIDTH_VARIANTS:
      raise ValueError(f"`width_variant` must be one of {_choices(WIDTH_VARIANTS)}, "
                       f"got {self.width_variant!r}.")
    groups = self.attention_groups
    if (not isinstance(groups, tuple) or [g for g in groups if g not in RESIDUAL_GROUPS]
        or len(set(groups)) != len(groups)):
      raise ValueError(
          f"`attention_groups` must list distinct residual groups out of "
          f"{_choices(RESIDUAL_GROUPS)} (empty for the convolutional ResNet), "
          f"got {list(groups) if isinstance(groups, tuple) else groups!r}.")
    operator = self.operator  # Raises unless `attention_variant` is registered.
    if self.stem_type not in STEM_TYPES:
      raise ValueError(f"`stem_type` must be one of {_choices(STEM_TYPES)}, "
                       f"got {self.stem_type!r}.")
    rate = self.stochastic_depth_drop_rate
    if not _is_number(rate) or not 0.0 <= rate < 1.0:
      raise ValueError(f"`stochastic_depth_drop_rate` must be in [0, 1), got {rate!r}.")
    check_positive_int(self.num_heads, "num_heads")
    check_max_relative_shift(self.max_relative_shift)
    for name in ("zero_init_residual", "use_sync_bn"):
      check_bool(getattr(self, name), name)
    for name in ("activation", "kernel_initializer"):
      if not isinstance(getattr(self, name), str) or not getattr(self, name):
        raise ValueError(f"`{name}` must be a name, got {getattr(self, name)!r}.")
    if not _is_number(self.norm_momentum) or not 0.0 <= self.norm_momentum < 1.0:
      raise ValueError(f"`norm_momentum` must be in [0, 1), got {self.norm_momentum!r}.")
    if not _is_number(self.norm_epsilon) or self.norm_epsilon <= 0:
      raise ValueError(f"`norm_epsilon` must be a number > 0, got {self.norm_epsilon!r}.")
    check_query_normalization(self.query_normalization)
    attention = tuple(g for g in self.residual_groups() if g.use_attention)
    if attention:
      operator.check(self, attention)

  def validate(self, input_size: Optional[Sequence[Optional[int]]] = None,
               input_size_argument: str = "input_specs") -> "Architecture":
    """Returns self; raises ValueError unless it can take images of `input_size`.

    Args:
      input_size: (height, width) of the input images; None entries are unknown.
      input_size_argument: How the caller names the input size in its errors.
    """
    if input_size is None:
      return self
    for name, size in zip(("height", "width"), input_size):
      if size is not None and size % INPUT_SIZE_DIVISOR:
        raise ValueError(
            f"`{input_size_argument}` {name} must be a multiple of "
            f"{INPUT_SIZE_DIVISOR} (the backbone's total stride), got {size}.")
      if size is None and self.needs_input_size:
        raise ValueError(
            f"`{input_size_argument}` {name} is unknown, but global attention sizes "
            "its relative embeddings from the feature size: give the input size or "
            "set `max_relative_shift`.")
    return self

  # -- What follows from the options. ---------------------------------------------------

  @property
  def operator(self):
    """The registered operator (`gsa_keras.operators.Operator`) of the attention groups."""
    from gsa_keras import operators
    return operators.get(self.attention_variant)

  @property
  def needs_input_size(self) -> bool:
    """Whether building needs a known input size (global positional attention)."""
    return bool(self.attention_groups) and self.operator.needs_input_size(self)

  def residual_groups(self) -> Tuple["GroupSpec", ...]:
    """The four residual groups of this network."""
    return residual_groups(self.model_id, self.width_variant, self.attention_groups)

  def stem_convs(self) -> Tuple["ConvSpec", ...]:
    """The stem's convolutions."""
    return stem_convs(self.stem_type, self.width_variant)

  def options(self) -> Dict[str, Any]:
    """{field: value} of every option (`attention_groups` a tuple)."""
    return {name: getattr(self, name) for name in OPTION_NAMES}

  def replace(self, **changes) -> "Architecture":
    """A copy with `changes`, checked."""
    return dataclasses.replace(self, **changes)


OPTION_FIELDS: Tuple[dataclasses.Field, ...] = dataclasses.fields(Architecture)
OPTION_NAMES: Tuple[str, ...] = tuple(f.name for f in OPTION_FIELDS)
OPTION_DOCS = types.MappingProxyType({f.name: f.metadata["doc"] for f in OPTION_FIELDS})
OPTION_TYPES = types.MappingProxyType(typing.get_type_hints(Architecture))
# Options that change how the network trains, not what trained weights compute: a
# model may take other values than the run whose weights it loads.
TRAINING_ONLY_OPTIONS = tuple(f.name for f in OPTION_FIELDS if f.metadata["training_only"])


def default(name: str):
  """The default of the option `name` (`Architecture`'s field)."""
  return Architecture.__dataclass_fields__[name].default


# Default of the layers' `num_heads` too (`gsa_keras.layers`).
DEFAULT_NUM_HEADS = default("num_heads")


def options_doc(names: Sequence[str] = OPTION_NAMES, indent: int = 4,
                width: int = 88) -> str:
  """The options' docs as Google-style `Args:` entries: 'name: doc Default: value.'"""
  lines = []
  for name in names:
    text = f"{name}: {OPTION_DOCS[name]} Default: {default(name)!r}."
    lines.extend(textwrap.wrap(text, width=width, initial_indent=" " * indent,
                               subsequent_indent=" " * (indent + 2)))
  return "\n".join(lines)


def parse_option(name: str, text: str):
  """The value of option `name` from command-line text ('none' for None, '1,2' or
  'none' for a tuple, 'true'/'false' for a bool)."""
  kind = OPTION_TYPES[name]
  text = text.strip()
  optional = typing.get_origin(kind) is typing.Union
  if optional:
    if text.lower() in ("", "none", "null"):
      return None
    kind = next(t for t in typing.get_args(kind) if t is not type(None))
  if typing.get_origin(kind) is tuple:
    if text.lower() in ("", "none", "[]", "()"):
      return ()
    return tuple(int(item) for item in text.strip("[]()").split(","))
  if kind is bool:
    if text.lower() not in ("true", "false", "1", "0"):
      raise ValueError(f"`{name}` must be true or false, got {text!r}.")
    return text.lower() in ("true", "1")
  return kind(text)


# -- The structure an architecture gives. --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GroupSpec:
  """One residual group: `repeats` bottleneck blocks, `filters` inner channels."""
  number: int  # 1..4, the paper's residual-group numbering (endpoint = number + 1).
  filters: int
  output_filters: int
  repeats: int
  use_attention: bool
  downsample: bool  # Whether the first block halves the feature size.


@dataclasses.dataclass(frozen=True)
class ConvSpec:
  """One stem convolution."""
  filters: int
  kernel_size: int
  strides: int


def stem_convs(stem_type: str, width_variant: str) -> Tuple[ConvSpec, ...]:
  """The stem's convolutions (each followed by batch norm and activation; then a 3x3
  max pool at stride 2): He et al.'s 7x7 ('v0') or ResNet-D's three 3x3 ('v1')."""
  width = int(_STEM_FILTERS * WIDTH_VARIANTS[width_variant].scale)
  if stem_type == "v0":
    return (ConvSpec(width, 7, 2),)
  return (ConvSpec(width // 2, 3, 2), ConvSpec(width // 2, 3, 1), ConvSpec(width, 3, 1))


def residual_groups(model_id: int, width_variant: str,
                    attention_groups: Sequence[int]) -> Tuple[GroupSpec, ...]:
  """The four residual groups of a GSA-ResNet (arguments already checked)."""
  width = WIDTH_VARIANTS[width_variant]
  groups = []
  for number, (base, repeats) in enumerate(
      zip(_INNER_FILTERS, BLOCK_REPEATS[model_id]), start=1):
    filters = int(base * width.scale)
    groups.append(GroupSpec(
        number=number, filters=filters, output_filters=filters * width.expansion,
        repeats=repeats, use_attention=number in attention_groups,
        downsample=number > 1))
  return tuple(groups)


# -- Argument checks shared with the layers, each written once. ----------------------------


def _choices(values):
  return ", ".join(repr(v) for v in values)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_int(value, argument: str) -> int:
  """Returns `value`; raises ValueError naming `argument` unless it is an int > 0."""
  if not _is_int(value) or value <= 0:
    raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")
  return value


def check_bool(value, argument: str) -> bool:
  """Returns `value`; raises ValueError naming `argument` unless it is True or False."""
  if not isinstance(value, bool):
    raise ValueError(f"`{argument}` must be True or False, got {value!r}.")
  return value


def check_query_normalization(value) -> Optional[str]:
  """Returns `value`; raises ValueError unless it is one of `QUERY_NORMALIZATIONS`."""
  if value not in QUERY_NORMALIZATIONS:
    raise ValueError(f"`query_normalization` must be one of "
                     f"{list(QUERY_NORMALIZATIONS)}, got {value!r}.")
  return value


def check_max_relative_shift(value) -> Optional[int]:
  """Returns `value`; raises unless None (global attention) or an int >= 0 (eq. 5's L)."""
  if value is not None and (not _is_int(value) or value < 0):
    raise ValueError("`max_relative_shift` must be None (global attention) or an "
                     f"integer >= 0, got {value!r}.")
  return value


def check_kernel_size(value, argument: str = "kernel_size") -> int:
  """Returns `value`; raises unless it is an odd int > 0 (a window centred on its pixel)."""
  if not _is_int(value) or value <= 0 or value % 2 == 0:
    raise ValueError(f"`{argument}` must be an odd positive integer (a window centred "
                     f"on its pixel), got {value!r}.")
  return value


def check_local_key_dim(key_dim: int, argument: str) -> int:
  """Returns `key_dim`; raises unless each head's key channels split in two halves.

  Local self-attention gives half of each head's key channels to the row-offset
  embedding and half to the column-offset embedding. `argument` says where the
  channels come from.
  """
  if key_dim % 2:
    raise ValueError(
        f"Local self-attention splits each head's key channels in half between its "
        f"row- and column-offset embeddings, so they must be even; {argument} gives "
        f"{key_dim} per head.")
  return key_dim


# -- Names the operator registry holds, for the layers and older callers. ------------------

_REGISTRY_NAMES = {
    # The registered attention operators' names, as registered now.
    "ATTENTION_VARIANTS": lambda operators: operators.names(),
    # {Table 4 variant: the GSA module's switches}, as registered now.
    "GSA_VARIANTS": lambda operators: operators.family_options(operators.GSA),
    "AXIAL_BASELINE": lambda operators: operators.AXIAL,
    "LOCAL_BASELINE": lambda operators: operators.LOCAL,
    "LOCAL_KERNEL_SIZE": lambda operators: operators.LOCAL_KERNEL_SIZE,
}


def __getattr__(name):
  if name in _REGISTRY_NAMES:
    from gsa_keras import operators
    return _REGISTRY_NAMES[name](operators)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
