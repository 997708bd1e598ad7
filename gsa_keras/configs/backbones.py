"""Typed configs for the GSA-ResNet backbone (`backbone.type: gsa_resnet`)."""

import dataclasses
from typing import List, Optional

from official.modeling import hyperparams
from official.vision.configs import backbones as vision_backbones

from gsa_keras import spec


@dataclasses.dataclass
class GSAResNet(hyperparams.Config):
  """GSA-ResNet (Section 3.2 and 4): ResNet with GSA modules for 3x3 convolutions.

  Attributes:
    model_id: Depth: 26, 38 (Ramachandran et al., 2019), 50, 101 or 152.
    width_variant: 'standard', or 'm_resnet' for Table 3's M-ResNet (block input and
      output channels halved, every layer's filters scaled by 1.125).
    attention_groups: Residual groups (1..4) using the attention module instead of
      the 3x3 convolution (Table 5). Empty gives the convolutional ResNet.
    attention_variant: 'gsa', a Table 4 ablation ('positional', 'content_column',
      'content_row', 'column', 'row', 'content'), Table 2's 'axial' baseline or
      Table 3's 'local' baseline (7x7 local self-attention; max_relative_shift null).
    num_heads: Attention heads per module (the paper uses 8).
    max_relative_shift: Largest relative offset the positional attention sees;
      None makes it global (Appendix B: L = max(h, w)).
    stem_type: 'v0' (7x7 convolution, max pool) or 'v1' (three 3x3 convolutions).
    stochastic_depth_drop_rate: Stochastic depth rate of the last residual group.
    zero_init_residual: Start each residual branch's last batch norm at gamma = 0
      (Goyal et al. 2017): keeps the initial gradients of GSA networks in the range
      of the convolutional ResNet's.
  """
  model_id: int = 50
  width_variant: str = spec.DEFAULT_WIDTH_VARIANT
  attention_groups: List[int] = dataclasses.field(
      default_factory=lambda: list(spec.RESIDUAL_GROUPS))
  attention_variant: str = spec.DEFAULT_ATTENTION_VARIANT
  num_heads: int = spec.DEFAULT_NUM_HEADS
  max_relative_shift: Optional[int] = None
  stem_type: str = spec.DEFAULT_STEM_TYPE
  stochastic_depth_drop_rate: float = 0.0
  zero_init_residual: bool = spec.DEFAULT_ZERO_INIT_RESIDUAL

  def validate(self):
    """Checks every field (ValueError naming it), then the restrictions."""
    spec.check_arguments(
        model_id=self.model_id, width_variant=self.width_variant,
        attention_groups=self.attention_groups,
        attention_variant=self.attention_variant, num_heads=self.num_heads,
        max_relative_shift=self.max_relative_shift, stem_type=self.stem_type,
        stochastic_depth_drop_rate=self.stochastic_depth_drop_rate)
    super().validate()


@dataclasses.dataclass
class Backbone(vision_backbones.Backbone):
  """Model Garden's backbone one-of plus `gsa_resnet`."""
  gsa_resnet: GSAResNet = dataclasses.field(default_factory=GSAResNet)
