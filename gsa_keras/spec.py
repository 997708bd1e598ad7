"""The network as data, and every argument check: Keras-free, TensorFlow-free.

One description of GSA-ResNet serves every builder (the Model Garden backbone
`gsa_keras.backbones`, the Keras models `gsa_keras.applications`), the layers
(`gsa_keras.layers`) and the configs (`gsa_keras.configs`), so each can check its
arguments before anything is built, and each check is written once.

The network is the paper's (Section 4, "Model"): a ResNet whose bottleneck 3x3
convolutions are replaced by attention modules in the residual groups listed in
`attention_groups` (Table 5), with 2x2 average pooling after the first attention
module of groups 2, 3 and 4. The module is GSA (Section 3), one of its Table 4
ablations, Table 2's axial baseline or Table 3's local self-attention baseline
(`ATTENTION_VARIANTS`).
"""

import dataclasses
import types
from typing import Optional, Sequence, Tuple

# -- Attention variants: the rows of Tables 2 and 4. -----------------------------------

# Which terms of the GSA module are on (Table 4). `AXIAL_BASELINE` is Table 2's
# "axial content and positional attention", a different layer rather than a flag set.
GSA_VARIANTS = types.MappingProxyType({
    "gsa": dict(use_content=True, use_column=True, use_row=True),
    "positional": dict(use_content=False, use_column=True, use_row=True),
    "content_column": dict(use_content=True, use_column=True, use_row=False),
    "content_row": dict(use_content=True, use_column=False, use_row=True),
    "column": dict(use_content=False, use_column=True, use_row=False),
    "row": dict(use_content=False, use_column=False, use_row=True),
    "content": dict(use_content=True, use_column=False, use_row=False),
})
AXIAL_BASELINE = "axial"
# Table 3's local attention ResNet-50 (Ramachandran et al. 2019, stand-alone
# self-attention): softmax attention over each pixel's 7x7 neighbourhood.
LOCAL_BASELINE = "local"
LOCAL_KERNEL_SIZE = 7
ATTENTION_VARIANTS = tuple(GSA_VARIANTS) + (AXIAL_BASELINE, LOCAL_BASELINE)

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

# -- Defaults of every builder, layer and config: the paper's GSA-ResNet (Section 4). --

DEFAULT_WIDTH_VARIANT = "standard"
DEFAULT_ATTENTION_VARIANT = "gsa"
DEFAULT_NUM_HEADS = 8
DEFAULT_STEM_TYPE = "v0"
# Not in the paper: keeps the initial gradients of GSA networks in the range of the
# convolutional ResNet's (`gsa_keras.configs.experiments`).
DEFAULT_ZERO_INIT_RESIDUAL = True

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


# -- Argument checks, each written once. ---------------------------------------------------


def _choices(values):
  return ", ".join(repr(v) for v in values)


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value, argument: str) -> int:
  """Returns `value`; raises ValueError naming `argument` unless it is an int > 0."""
  if not _is_int(value) or value <= 0:
    raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")
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


def check_variant(name: str, argument: str = "attention_variant") -> str:
  """Returns `name`; raises ValueError unless it is one of `ATTENTION_VARIANTS`."""
  if name not in ATTENTION_VARIANTS:
    raise ValueError(
        f"`{argument}` must be one of {list(ATTENTION_VARIANTS)}, got {name!r}.")
  return name


def check_arguments(model_id: int,
                    width_variant: str = DEFAULT_WIDTH_VARIANT,
                    attention_groups: Sequence[int] = RESIDUAL_GROUPS,
                    attention_variant: str = DEFAULT_ATTENTION_VARIANT,
                    num_heads: int = DEFAULT_NUM_HEADS,
                    max_relative_shift: Optional[int] = None,
                    stem_type: str = DEFAULT_STEM_TYPE,
                    stochastic_depth_drop_rate: float = 0.0,
                    input_size: Optional[Sequence[Optional[int]]] = None,
                    input_size_argument: str = "input_specs") -> None:
  """Raises ValueError naming the bad argument; call before building any layer.

  Args:
    model_id: Network depth, a key of `BLOCK_REPEATS`.
    width_variant: A key of `WIDTH_VARIANTS`.
    attention_groups: Residual groups (1..4) whose 3x3 convolutions are attention
      modules.
    attention_variant: One of `ATTENTION_VARIANTS`.
    num_heads: Attention heads; must divide every attention group's channels.
    max_relative_shift: None (global positional attention) or an int >= 0; None
      for the 'local' variant.
    stem_type: One of `STEM_TYPES`.
    stochastic_depth_drop_rate: Initial stochastic depth rate, in [0, 1).
    input_size: (height, width) of the input image; None entries are unknown.
    input_size_argument: How the caller names the input size in its errors.
  """
  if not _is_int(model_id) or model_id not in BLOCK_REPEATS:
    raise ValueError(f"`model_id` must be one of {_choices(BLOCK_REPEATS)}, "
                     f"got {model_id!r}.")
  if width_variant not in WIDTH_VARIANTS:
    raise ValueError(f"`width_variant` must be one of {_choices(WIDTH_VARIANTS)}, "
                     f"got {width_variant!r}.")
  groups = list(attention_groups)
  bad_groups = [g for g in groups if g not in RESIDUAL_GROUPS]
  if bad_groups or len(set(groups)) != len(groups):
    raise ValueError(
        f"`attention_groups` must list distinct residual groups out of "
        f"{_choices(RESIDUAL_GROUPS)} (empty for the convolutional ResNet), "
        f"got {groups!r}.")
  check_variant(attention_variant, "attention_variant")
  if stem_type not in STEM_TYPES:
    raise ValueError(f"`stem_type` must be one of {_choices(STEM_TYPES)}, "
                     f"got {stem_type!r}.")
  if not 0.0 <= stochastic_depth_drop_rate < 1.0:
    raise ValueError("`stochastic_depth_drop_rate` must be in [0, 1), got "
                     f"{stochastic_depth_drop_rate!r}.")
  check_positive_int(num_heads, "num_heads")
  for group in residual_groups(model_id, width_variant, groups):
    if group.use_attention and group.filters % num_heads:
      raise ValueError(
          f"`num_heads`={num_heads} must divide the channels of every attention "
          f"group, but residual group {group.number} of width_variant="
          f"{width_variant!r} has {group.filters} channels.")
  check_max_relative_shift(max_relative_shift)
  local = attention_variant == LOCAL_BASELINE
  if local:
    if max_relative_shift is not None:
      raise ValueError(
          f"`max_relative_shift` does not apply to attention_variant={LOCAL_BASELINE!r} "
          f"(its reach is the {LOCAL_KERNEL_SIZE}x{LOCAL_KERNEL_SIZE} neighbourhood); "
          f"leave it None, got {max_relative_shift!r}.")
    for group in residual_groups(model_id, width_variant, groups):
      if group.use_attention:
        check_local_key_dim(
            group.filters // num_heads,
            f"`num_heads`={num_heads} on residual group {group.number}'s "
            f"{group.filters} channels")
  if input_size is not None:
    for name, size in zip(("height", "width"), input_size):
      if size is not None and size % INPUT_SIZE_DIVISOR:
        raise ValueError(
            f"`{input_size_argument}` {name} must be a multiple of "
            f"{INPUT_SIZE_DIVISOR} (the backbone's total stride), got {size}.")
      if size is None and groups and max_relative_shift is None and not local:
        raise ValueError(
            f"`{input_size_argument}` {name} is unknown, but global attention sizes "
            "its relative embeddings from the feature size: give the input size or "
            "set `max_relative_shift`.")
