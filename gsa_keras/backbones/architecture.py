"""GSA-ResNet as data: depths, widths and the spatial operator of each residual group.

Keras-free, so configs can check their arguments before anything is built. The network
is the paper's (Section 4, "Model"): a ResNet whose bottleneck 3x3 convolutions are
replaced by GSA modules in the residual groups listed in `attention_groups` (Table 5),
with 2x2 average pooling after the first GSA module of groups 2, 3 and 4.
"""

import dataclasses
import types
from typing import Optional, Sequence, Tuple

from gsa_keras.layers import variants

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


def stem_filters(width_variant: str) -> int:
  return int(_STEM_FILTERS * WIDTH_VARIANTS[width_variant].scale)


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


def _choices(values):
  return ", ".join(repr(v) for v in values)


def check_arguments(model_id: int,
                    width_variant: str = "standard",
                    attention_groups: Sequence[int] = RESIDUAL_GROUPS,
                    attention_variant: str = "gsa",
                    num_heads: int = 8,
                    max_relative_shift: Optional[int] = None,
                    stem_type: str = "v0",
                    stochastic_depth_drop_rate: float = 0.0,
                    input_size: Optional[Sequence[Optional[int]]] = None) -> None:
  """Raises ValueError naming the bad field; call before building any layer.

  Args:
    model_id: Network depth, a key of `BLOCK_REPEATS`.
    width_variant: A key of `WIDTH_VARIANTS`.
    attention_groups: Residual groups (1..4) whose 3x3 convolutions are GSA modules.
    attention_variant: One of `gsa_keras.layers.variants.ATTENTION_VARIANTS`.
    num_heads: Attention heads; must divide every attention group's channels.
    max_relative_shift: None (global positional attention) or an int >= 0.
    stem_type: One of `STEM_TYPES`.
    stochastic_depth_drop_rate: Initial stochastic depth rate, in [0, 1).
    input_size: (height, width) of the input image; None entries are unknown.
  """
  if not isinstance(model_id, int) or model_id not in BLOCK_REPEATS:
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
  variants.check_variant(attention_variant, "attention_variant")
  if stem_type not in STEM_TYPES:
    raise ValueError(f"`stem_type` must be one of {_choices(STEM_TYPES)}, "
                     f"got {stem_type!r}.")
  if not 0.0 <= stochastic_depth_drop_rate < 1.0:
    raise ValueError("`stochastic_depth_drop_rate` must be in [0, 1), got "
                     f"{stochastic_depth_drop_rate!r}.")
  if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
    raise ValueError(f"`num_heads` must be a positive int, got {num_heads!r}.")
  for group in residual_groups(model_id, width_variant, groups):
    if group.use_attention and group.filters % num_heads:
      raise ValueError(
          f"`num_heads`={num_heads} must divide the channels of every attention "
          f"group, but residual group {group.number} of width_variant="
          f"{width_variant!r} has {group.filters} channels.")
  if max_relative_shift is not None and (
      isinstance(max_relative_shift, bool) or
      not isinstance(max_relative_shift, int) or max_relative_shift < 0):
    raise ValueError("`max_relative_shift` must be None (global) or an int >= 0, "
                     f"got {max_relative_shift!r}.")
  if input_size is not None:
    for name, size in zip(("height", "width"), input_size):
      if size is not None and size % INPUT_SIZE_DIVISOR:
        raise ValueError(
            f"`input_specs` {name} must be a multiple of {INPUT_SIZE_DIVISOR} "
            f"(the backbone's total stride), got {size}.")
      if size is None and groups and max_relative_shift is None:
        raise ValueError(
            f"`input_specs` {name} is unknown, but global attention sizes its "
            "relative embeddings from the feature size: give the input size or "
            "set `max_relative_shift`.")
