"""SAN's pairwise and patchwise self-attention (Zhao, Jia, Koltun 2020, "Exploring
Self-attention for Image Recognition"), written once for both Keras flavours.

As in `gsa_keras.layers.definitions`, each `...Definition` class holds a whole layer
(arguments, weights, forward pass, config) without a Keras base class; a flavour module
declares the public layer as `class PairwiseSelfAttention(
PairwiseSelfAttentionDefinition, keras.layers.Layer)` with `_keras = keras` and
registers it as `gsa_keras>PairwiseSelfAttention`. The math lives in
`gsa_keras.ops.san_attention`.
"""

from typing import Any

import tensorflow as tf

from gsa_keras import spec
from gsa_keras.layers import definitions
from gsa_keras.ops import san_attention
from gsa_keras.ops.attention import dimensions

# SAN's defaults (`model/san.py`): eight output channels per weight channel, relation
# channels a sixteenth of the input's.
DEFAULT_SHARE_PLANES = 8
DEFAULT_RELATION_REDUCTION = 16


def _dense(tensor, kernel, bias=None):
  """A 1x1 convolution on the last axis, as one 2-D matmul (`(..., c) @ (c, d)`)."""
  leading = dimensions(tensor)[:-1]
  outputs = tf.matmul(tf.reshape(tensor, [-1, kernel.shape[0]]), kernel)
  if bias is not None:
    outputs = outputs + bias
  return tf.reshape(outputs, leading + [kernel.shape[1]])


def _check_number(value, argument, low, high=None):
  """Returns `value`; raises ValueError unless it is a number in `[low, high)` (or `> low`
  without `high`)."""
  is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
  if high is None:
    if not is_number or value <= low:
      raise ValueError(f"`{argument}` must be a number > {low}, got {value!r}.")
  elif not is_number or not low <= value < high:
    raise ValueError(f"`{argument}` must be in [{low}, {high}), got {value!r}.")
  return value


class SelfAttentionNetworkBase(definitions.WeightFactory):
  """What SAN's two operators share (Zhao et al. 2020, Section 3, Fig. 2).

  Input `x` `(batch, height, width, channels)`, output `(batch, height, width,
  filters)`, `y_c(i) = sum_{j in R(i)} w_{c mod W}(i, j) beta_c(x_j)` over the
  `kernel_size x kernel_size` footprint R(i), reflection-padded at the borders, with
  `W = filters / share_planes` weight channels shared in an interleaved way (output
  channel c uses weight channel c mod W, as SAN's aggregation kernel does).

  Weights (Keras kernels are `(in, out)`; SAN's 1x1 convolutions have biases but for
  `gamma`'s first):
  - `phi_kernel` `(channels, r)`, `phi_bias` `(r,)`: `phi`, SAN's `conv1`, with
    `r = channels // relation_reduction` relation channels;
  - `psi_kernel`, `psi_bias`: `psi`, SAN's `conv2`, the same shapes;
  - `beta_kernel` `(channels, filters)`, `beta_bias` `(filters,)`: `beta`, SAN's `conv3`;
  - `gamma` (SAN's `conv_w`): batch norm `gamma_input_norm`, ReLU, `gamma_hidden_kernel`
    (no bias), batch norm `gamma_hidden_norm`, ReLU, `gamma_output_kernel` and
    `gamma_output_bias`; the operators set the widths. (Each batch norm's own weights
    are Keras's `gamma`, `beta`, `moving_mean` and `moving_variance`: its scale and
    offset, not SAN's functions of the same names.)
  Subclasses add their own weights and implement `_gamma_widths`, `_relation_shape`,
  `_relation` and `_weights_from_gamma`.
  """

  _keras = None  # The Keras module: set by each flavour's public class.

  def __init__(self,
               filters: int,
               *,
               kernel_size: int = 3,
               share_planes: int = DEFAULT_SHARE_PLANES,
               relation_reduction: int = DEFAULT_RELATION_REDUCTION,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               **kwargs):
    """Checks and stores the arguments; the concrete layers document them.

    `**kwargs` are the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).
    """
    super().__init__(**kwargs)
    self.filters = spec.check_positive_int(filters, "filters")
    self.kernel_size = spec.check_kernel_size(kernel_size)
    self.share_planes = spec.check_positive_int(share_planes, "share_planes")
    if filters % share_planes:
      raise ValueError(
          f"`filters` ({filters}) must be divisible by `share_planes` ({share_planes}): "
          "output channel c uses weight channel c mod (filters / share_planes).")
    self.relation_reduction = spec.check_positive_int(relation_reduction,
                                                      "relation_reduction")
    self.kernel_initializer = self._keras.initializers.get(kernel_initializer)
    self.kernel_regularizer = self._keras.regularizers.get(kernel_regularizer)
    self.norm_momentum = _check_number(norm_momentum, "norm_momentum", 0.0, 1.0)
    self.norm_epsilon = _check_number(norm_epsilon, "norm_epsilon", 0.0)
    if not isinstance(use_sync_bn, bool):
      raise ValueError(f"`use_sync_bn` must be True or False, got {use_sync_bn!r}.")
    self.use_sync_bn = use_sync_bn

  @property
  def weight_channels(self):
    """`W = filters / share_planes`, the attention weights' channels."""
    return self.filters // self.share_planes

  # -- What a subclass defines. ---------------------------------------------------------

  def _gamma_widths(self, relation_channels):
    """`gamma`'s (input, hidden, output) channels."""
    raise NotImplementedError

  def _relation_shape(self, shape, channels):
    """The shape of `gamma`'s input, `channels` wide, for inputs of `shape`."""
    raise NotImplementedError

  def _build_relation(self, shape):
    """Creates the operator's own weights (none by default)."""

  def _relation(self, queries, keys, index):
    """`gamma`'s input from `phi(x)`, `psi(x)` and the footprints' index table."""
    raise NotImplementedError

  def _weights_from_gamma(self, outputs):
    """The attention weights `(b, x, y, m, W)` from `gamma`'s output."""
    raise NotImplementedError

  # -- Shapes. ----------------------------------------------------------------------------

  def _checked_input_shape(self, input_shape):
    """Validates an input shape; returns it as a list of 4 entries."""
    name = type(self).__name__
    shape = definitions.image_shape(name, input_shape)
    if shape[3] < self.relation_reduction:
      raise ValueError(
          f"{name}: `relation_reduction`={self.relation_reduction} leaves no relation "
          f"channel for {shape[3]} input channels (SAN's channels // relation_reduction); "
          f"it must be at most {shape[3]}.")
    san_attention.check_reflection_size(shape[1], shape[2], self.kernel_size)
    return shape

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape).as_list()
    return tuple(shape[:3] + [self.filters])

  # -- Weights. ---------------------------------------------------------------------------

  def _add_bias(self, name, size):
    return self.add_weight(name=name, shape=(size,), initializer="zeros", trainable=True)

  def build(self, input_shape):
    shape = self._checked_input_shape(input_shape)
    channels = shape[3]
    self._relation_channels = channels // self.relation_reduction
    for name in ("phi", "psi"):
      setattr(self, f"{name}_kernel",
              self._add_kernel(f"{name}_kernel", (channels, self._relation_channels)))
      setattr(self, f"{name}_bias", self._add_bias(f"{name}_bias", self._relation_channels))
    self.beta_kernel = self._add_kernel("beta_kernel", (channels, self.filters))
    self.beta_bias = self._add_bias("beta_bias", self.filters)
    self._build_relation(shape)
    inputs, hidden, outputs = self._gamma_widths(self._relation_channels)
    relation_shape = self._relation_shape(shape, inputs)
    self.gamma_input_norm = self._add_norm("gamma_input_norm", relation_shape)
    self.gamma_hidden_kernel = self._add_kernel("gamma_hidden_kernel", (inputs, hidden))
    self.gamma_hidden_norm = self._add_norm("gamma_hidden_norm",
                                            relation_shape[:-1] + [hidden])
    self.gamma_output_kernel = self._add_kernel("gamma_output_kernel", (hidden, outputs))
    self.gamma_output_bias = self._add_bias("gamma_output_bias", outputs)
    super().build(input_shape)

  # -- Forward pass. ------------------------------------------------------------------------

  def _cast(self, weight):
    return tf.cast(weight, self.compute_dtype)

  def _project(self, inputs, name):
    """A 1x1 convolution with bias: `phi`, `psi` or `beta`."""
    return _dense(inputs, self._cast(getattr(self, f"{name}_kernel")),
                  self._cast(getattr(self, f"{name}_bias")))

  def _gamma(self, relation, training):
    """`gamma`: BN, ReLU, 1x1 convolution, BN, ReLU, 1x1 convolution with bias."""
    hidden = tf.nn.relu(self.gamma_input_norm(relation, training=training))
    hidden = _dense(hidden, self._cast(self.gamma_hidden_kernel))
    hidden = tf.nn.relu(self.gamma_hidden_norm(hidden, training=training))
    return _dense(hidden, self._cast(self.gamma_output_kernel),
                  self._cast(self.gamma_output_bias))

  def _attention(self, inputs, training):
    """The attention weights `(b, x, y, m, W)` and the footprints' index table."""
    _, height, width, _ = dimensions(inputs)
    index = san_attention.reflected_neighbourhood(height, width, self.kernel_size)
    relation = self._relation(self._project(inputs, "phi"), self._project(inputs, "psi"),
                              index)
    return self._weights_from_gamma(self._gamma(relation, training)), index

  def call(self, inputs, training=None):
    weights, index = self._attention(inputs, training)
    return san_attention.interleaved_aggregation(weights, self._project(inputs, "beta"), index)

  def attention_weights(self, inputs, training=False):
    """The weights `w(i, j)` the layer aggregates `beta` with, for `inputs`.

    Args:
      inputs: `(batch, height, width, channels)`, as for `call`; the layer is built on
        first use.
      training: whether the batch norms inside `gamma` use the batch's statistics.

    Returns:
      `(batch, height, width, kernel_size ** 2, filters / share_planes)` in the compute
      dtype: entry `[..., m, w]` weighs neighbour `m` (row-major offsets `(a - i, b - j)`
      in `[-r, r]^2`, reflected at the borders) for the output channels `c` with
      `c mod (filters / share_planes) = w`.
    """
    inputs = tf.convert_to_tensor(inputs, dtype=self.compute_dtype)
    if not self.built:
      self.build(inputs.shape)
    return self._attention(inputs, training)[0]

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters,
        kernel_size=self.kernel_size,
        share_planes=self.share_planes,
        relation_reduction=self.relation_reduction,
        kernel_initializer=self._keras.initializers.serialize(self.kernel_initializer),
        kernel_regularizer=(self._keras.regularizers.serialize(self.kernel_regularizer)
                            if self.kernel_regularizer else None),
        norm_momentum=self.norm_momentum,
        norm_epsilon=self.norm_epsilon,
        use_sync_bn=self.use_sync_bn,
    )
    return config


class PairwiseSelfAttentionDefinition(SelfAttentionNetworkBase):
  """SAN's pairwise self-attention (Zhao et al. 2020, eq. 2), relation = subtraction.

      y_c(i) = sum_{j in R(i)} softmax_j(gamma([phi(x_i) - psi(x_j), p_i - p_j]))_{c mod W}
               beta_c(x_j)

  over the `k x k` footprint R(i) (reflection padding), `W = filters / share_planes`.
  `p` encodes the pixels' coordinates on a [-1, 1] grid (column, row) with a 1x1
  convolution, 2 -> 2 channels (`position_kernel` `(2, 2)`, `position_bias` `(2,)`; the
  bias cancels in `p_i - p_j` but is kept, as in SAN). `gamma` maps the `r + 2`
  channels of each pair's relation (`r` subtraction channels, then column and row) to
  `r`, then to the `W` logits, and a softmax over the k^2 neighbours makes the weights.
  Its batch norms normalise over the batch, the pixels and the neighbours. See
  `SelfAttentionNetworkBase` for the shared weights.
  """

  pairwise = True  # Whether the relation is per pair (eq. 2) or per patch (eq. 4).

  def __init__(self,
               filters: int,
               *,
               kernel_size: int = 3,
               share_planes: int = DEFAULT_SHARE_PLANES,
               relation_reduction: int = DEFAULT_RELATION_REDUCTION,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               **kwargs):
    """Creates the pairwise operator; its weights are made when it first sees an input.

    Args:
      filters: int, the output channels `C_out` (`beta`'s); divisible by
        `share_planes`.
      kernel_size: int, odd, the footprint's side `k` (default 3, SAN's module default;
        its networks use 3 in the first stage and 7 after). Inputs need more than
        `kernel_size // 2` pixels along each side (reflection padding).
      share_planes: int, how many output channels share a weight channel (default 8,
        SAN's): the weights have `filters / share_planes` channels and output channel c
        uses weight channel `c mod (filters / share_planes)`.
      relation_reduction: int, the relation channels `r` of `phi` and `psi` are the
        input channels // `relation_reduction` (default 16, SAN's); at least 1.
      kernel_initializer: a Keras initializer or its name, for every kernel (`phi`,
        `psi`, `beta`, `gamma`'s and the position encoding's); biases start at zero.
      kernel_regularizer: a Keras regularizer or None, for the same kernels.
      norm_momentum: float in [0, 1), the momentum of `gamma`'s two batch norms;
        default the architecture's (0.9).
      norm_epsilon: float > 0, their epsilon; default the architecture's (1e-5).
      use_sync_bn: bool, whether they synchronise their batch statistics across
        replicas.
      **kwargs: the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).

    Raises:
      ValueError: an argument out of range (the input-dependent checks, relation
        channels and the input size, run when the layer is built).
    """
    super().__init__(filters, kernel_size=kernel_size, share_planes=share_planes,
                     relation_reduction=relation_reduction,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
                     norm_epsilon=norm_epsilon, use_sync_bn=use_sync_bn, **kwargs)

  def _gamma_widths(self, relation_channels):
    channels = relation_channels + san_attention.POSITION_CHANNELS
    return channels, relation_channels, self.weight_channels

  def _relation_shape(self, shape, channels):
    return shape[:3] + [self.kernel_size ** 2, channels]

  def _build_relation(self, shape):
    width = san_attention.POSITION_CHANNELS
    self.position_kernel = self._add_kernel("position_kernel", (width, width))
    self.position_bias = self._add_bias("position_bias", width)

  def _relation(self, queries, keys, index):
    _, height, width, _ = dimensions(queries)
    grid = san_attention.position_grid(height, width, self.compute_dtype)
    positions = _dense(grid, self._cast(self.position_kernel),
                       self._cast(self.position_bias))
    return san_attention.pairwise_relation(
        queries, keys, san_attention.position_differences(positions, index), index)

  def _weights_from_gamma(self, outputs):
    return san_attention.neighbour_softmax(outputs)


class PatchwiseSelfAttentionDefinition(SelfAttentionNetworkBase):
  """SAN's patchwise self-attention (Zhao et al. 2020, eq. 4), relation = concatenation.

      y_c(i) = sum_{j in R(i)} gamma([phi(x_i), psi(x_j) for j in R(i)])_{j, c mod W}
               beta_c(x_j)

  over the `k x k` footprint R(i) (reflection padding), `W = filters / share_planes`.
  Each pixel's relation concatenates `phi(x_i)` (`r` channels) with `psi` on its whole
  footprint, channel-major as SAN's `Unfold` (`psi` channel `c` of neighbour `m` at
  `r + c k^2 + m`): `r (k^2 + 1)` channels. `gamma` maps them to `W`, then to `W k^2`
  weights, weight-channel-major (neighbour `m` of weight channel `w` at `w k^2 + m`, as
  SAN's `view`): one weight per neighbour and weight channel, not normalised (no
  softmax). Its batch norms normalise over the batch and the pixels. Stride 1 only (as
  SAN's networks use it). See `SelfAttentionNetworkBase` for the shared weights.
  """

  pairwise = False  # Whether the relation is per pair (eq. 2) or per patch (eq. 4).

  def __init__(self,
               filters: int,
               *,
               kernel_size: int = 3,
               share_planes: int = DEFAULT_SHARE_PLANES,
               relation_reduction: int = DEFAULT_RELATION_REDUCTION,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               **kwargs):
    """Creates the patchwise operator; its weights are made when it first sees an input.

    Args:
      filters: int, the output channels `C_out` (`beta`'s); divisible by
        `share_planes`.
      kernel_size: int, odd, the footprint's side `k` (default 3, SAN's module default;
        its networks use 3 in the first stage and 7 after). Inputs need more than
        `kernel_size // 2` pixels along each side (reflection padding).
      share_planes: int, how many output channels share a weight channel (default 8,
        SAN's): the weights have `filters / share_planes` channels and output channel c
        uses weight channel `c mod (filters / share_planes)`.
      relation_reduction: int, the relation channels `r` of `phi` and `psi` are the
        input channels // `relation_reduction` (default 16, SAN's); at least 1.
      kernel_initializer: a Keras initializer or its name, for every kernel (`phi`,
        `psi`, `beta`, `gamma`'s); biases start at zero.
      kernel_regularizer: a Keras regularizer or None, for the same kernels.
      norm_momentum: float in [0, 1), the momentum of `gamma`'s two batch norms;
        default the architecture's (0.9).
      norm_epsilon: float > 0, their epsilon; default the architecture's (1e-5).
      use_sync_bn: bool, whether they synchronise their batch statistics across
        replicas.
      **kwargs: the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).

    Raises:
      ValueError: an argument out of range (the input-dependent checks, relation
        channels and the input size, run when the layer is built).
    """
    super().__init__(filters, kernel_size=kernel_size, share_planes=share_planes,
                     relation_reduction=relation_reduction,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
                     norm_epsilon=norm_epsilon, use_sync_bn=use_sync_bn, **kwargs)

  def _gamma_widths(self, relation_channels):
    channels = relation_channels * (self.kernel_size ** 2 + 1)
    return channels, self.weight_channels, self.weight_channels * self.kernel_size ** 2

  def _relation_shape(self, shape, channels):
    return shape[:3] + [channels]

  def _relation(self, queries, keys, index):
    return san_attention.patchwise_relation(queries, keys, index)

  def _weights_from_gamma(self, outputs):
    return san_attention.patchwise_weights(outputs, self.kernel_size)


# -- Binding to a Keras flavour. ------------------------------------------------------------
