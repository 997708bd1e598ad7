"""The GSA layers, written once for both Keras flavours.

Each `...Definition` class here holds a whole layer: its arguments, weights, forward
pass and config. It is a mixin without a Keras base class: `gsa_keras.layers.keras3` and
`gsa_keras.layers.tf_keras` each declare the public layer as a short class that inherits
the definition and its flavour's `Layer` (e.g. `class GlobalSelfAttention(
GlobalSelfAttentionDefinition, keras.layers.Layer)`), set the class attribute `_keras` to
their Keras module and register it as serializable under `gsa_keras>ClassName`. The math
lives in `gsa_keras.ops`; these classes own weights, validation and serialization.
"""

import math
from typing import Any, Optional, Sequence, Union

import tensorflow as tf

from gsa_keras import ops
from gsa_keras import spec


def _spatial_size(value):
  """Validates `spatial_size`: None, an int, or a pair of positive ints (height, width)."""
  if value is None:
    return None
  pair = (value, value) if isinstance(value, int) else tuple(value)
  if len(pair) != 2:
    raise ValueError(
        f"`spatial_size` must be None, an int or a (height, width) pair, got {value!r}.")
  for size in pair:
    spec.check_positive_int(size, "spatial_size")
  return pair



def image_shape(layer_name: str, input_shape) -> list:
  """`input_shape` as a list `[batch, height, width, channels]`; raises ValueError
  naming the layer unless it has rank 4 and known channels."""
  shape = tf.TensorShape(input_shape)
  if shape.rank != 4:
    raise ValueError(f"{layer_name} expects inputs of rank 4 (batch, height, width, "
                     f"channels), got shape {shape}.")
  shape = shape.as_list()
  if shape[3] is None:
    raise ValueError(f"{layer_name} needs a known channel dimension (inputs' last axis); "
                     f"got shape {tuple(shape)}.")
  return shape


class WeightFactory:
  """How the layers here make their weights: kernels with a fresh initializer each and
  the layer's regularizer, and batch norms built inside the layer. `_add_kernel` reads
  the layer's `kernel_initializer` and `kernel_regularizer`; `_add_norm` its `_keras`,
  `norm_momentum`, `norm_epsilon` and `use_sync_bn`."""

  def _add_kernel(self, name, shape):
    # A fresh initializer per weight: an unseeded tf_keras initializer instance returns
    # the same values on every call.
    initializer = self.kernel_initializer.__class__.from_config(
        self.kernel_initializer.get_config())
    return self.add_weight(name=name, shape=shape, initializer=initializer,
                           regularizer=self.kernel_regularizer, trainable=True)

  def _add_norm(self, name, shape):
    """A batch norm sublayer `name`, built for inputs of `shape`."""
    norm = self._keras.layers.BatchNormalization(
        momentum=self.norm_momentum, epsilon=self.norm_epsilon,
        synchronized=self.use_sync_bn, dtype=self.dtype_policy, name=name)
    with tf.name_scope(norm.name):  # tf_keras names weights by scope.
      norm.build(shape)
    return norm


class AttentionBase(WeightFactory):
  """What every attention layer here shares: heads, the fused K/Q/V kernel (eq. 3).

  Argument checks for `filters`, `num_heads`, `key_channels` and the initializer and
  regularizer of every weight, the input-shape checks, weight creation, the output
  shape and the config of those arguments.
  """

  _keras = None  # The Keras module: set by each flavour's public class.

  def __init__(self,
               filters: int,
               *,
               num_heads: int = spec.DEFAULT_NUM_HEADS,
               key_channels: Optional[int] = None,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               **kwargs):
    """Checks and stores the shared arguments; the concrete layers document them.

    `**kwargs` are the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).
    """
    super().__init__(**kwargs)
    self.filters = spec.check_positive_int(filters, "filters")
    self.num_heads = spec.check_positive_int(num_heads, "num_heads")
    if filters % num_heads:
      raise ValueError(f"`filters` ({filters}) must be divisible by `num_heads` "
                       f"({num_heads}): each head gets filters/num_heads value channels.")
    self.key_channels = (None if key_channels is None else
                         spec.check_positive_int(key_channels, "key_channels"))
    if key_channels is not None and key_channels % num_heads:
      raise ValueError(f"`key_channels` ({key_channels}) must be divisible by `num_heads` "
                       f"({num_heads}).")
    self.kernel_initializer = self._keras.initializers.get(kernel_initializer)
    self.kernel_regularizer = self._keras.regularizers.get(kernel_regularizer)

  _uses_keys = True

  def _checked_input_shape(self, input_shape):
    """Validates an input shape; returns it as a list of 4 entries."""
    name = type(self).__name__
    shape = image_shape(name, input_shape)
    if self.key_channels is None and shape[3] % self.num_heads:
      raise ValueError(
          f"{name}: the input channels ({shape[3]}) must be divisible by `num_heads` "
          f"({self.num_heads}), since `key_channels` defaults to them; or pass "
          "`key_channels`.")
    return shape

  def compute_output_shape(self, input_shape):
    shape = tf.TensorShape(input_shape).as_list()
    return tuple(shape[:3] + [self.filters])

  def _build_projection(self, shape):
    """Sets `_key_dim` and creates eq. 3's fused `(d, heads, [k] + k + v)` kernel."""
    self._key_dim = (self.key_channels or shape[3]) // self.num_heads
    value_dim = self.filters // self.num_heads
    projected = (2 if self._uses_keys else 1) * self._key_dim + value_dim
    self.kqv_kernel = self._add_kernel("kqv_kernel", (shape[3], self.num_heads, projected))

  def _project_kqv(self, inputs):
    """Eq. 3: keys (or None), queries and values, `(b, x, y, n, c)` each."""
    return ops.project_kqv(inputs, tf.cast(self.kqv_kernel, self.compute_dtype),
                           self._key_dim, with_keys=self._uses_keys)

  def _output(self, outputs, inputs):
    """`(b, x, y, n, v)` per-head outputs as `(b, x, y, filters)`."""
    dynamic = tf.shape(inputs)
    return tf.reshape(outputs, [dynamic[0], dynamic[1], dynamic[2], self.filters])

  def get_config(self):
    config = super().get_config()
    config.update(
        filters=self.filters,
        num_heads=self.num_heads,
        key_channels=self.key_channels,
        kernel_initializer=self._keras.initializers.serialize(self.kernel_initializer),
        kernel_regularizer=(self._keras.regularizers.serialize(self.kernel_regularizer)
                            if self.kernel_regularizer else None),
    )
    return config


class AxialAttentionBase(AttentionBase):
  """What the GSA module and the Table 2 axial baseline share.

  Besides `AttentionBase`: one relative embedding table per attended axis shared by all
  heads (eqs. 5-6) and the batch normalisation between the column and the row
  attention (Appendix B). Subclasses say which terms they use (`_uses_keys`,
  `_attended_axes`) and implement `_attend`.
  """

  def __init__(self,
               filters: int,
               *,
               num_heads: int = spec.DEFAULT_NUM_HEADS,
               key_channels: Optional[int] = None,
               max_relative_shift: Optional[int] = None,
               spatial_size: Union[None, int, Sequence[int]] = None,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               **kwargs):
    """Checks and stores the arguments of the axial layers; the concrete layers
    document them. `**kwargs` are the base `Layer`'s keywords."""
    super().__init__(filters, num_heads=num_heads, key_channels=key_channels,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, **kwargs)
    self.max_relative_shift = spec.check_max_relative_shift(max_relative_shift)
    self.spatial_size = _spatial_size(spatial_size)
    self.norm_momentum = norm_momentum
    self.norm_epsilon = norm_epsilon
    self.use_sync_bn = use_sync_bn

  # -- What a subclass uses. ------------------------------------------------------------

  @property
  def _attended_axes(self):
    """The positional axes ('column', 'row') this layer attends along, in order."""
    return ops.AXES

  @property
  def _uses_column_norm(self):
    return len(self._attended_axes) == 2

  def _attend(self, keys, queries, values, positions, training):
    raise NotImplementedError

  # -- Shapes. ----------------------------------------------------------------------------

  def _table_reaches(self, shape):
    """The largest shift `M` each embedding table must cover, per attended axis."""
    reaches = {}
    for axis in self._attended_axes:
      dimension = ops.attention.AXIS_DIMENSION[axis]
      if self.max_relative_shift is not None:
        reaches[axis] = self.max_relative_shift
      elif self.spatial_size is not None:
        reaches[axis] = self.spatial_size[dimension - 1] - 1
      elif shape[dimension] is not None:
        reaches[axis] = shape[dimension] - 1
      else:
        raise ValueError(
            f"{type(self).__name__} with global positional attention "
            f"(max_relative_shift=None) must know the input's {axis} length to size "
            f"its relative embeddings; got input shape {tuple(shape)}. Pass "
            "`spatial_size=(height, width)` or `max_relative_shift`.")
    return reaches

  def _check_covered(self, shape, reaches):
    """Raises if global attention would reach beyond the embedding tables."""
    if self.max_relative_shift is not None:
      return
    for axis, reach in reaches.items():
      length = shape[ops.attention.AXIS_DIMENSION[axis]]
      if length is not None and length - 1 > reach:
        raise ValueError(
            f"{type(self).__name__}: the input's {axis} length {length} exceeds what its "
            f"relative embeddings cover (at most {reach + 1} pixels; `spatial_size` is "
            f"{self.spatial_size}). Build the layer for the larger size (see "
            "`gsa_keras.layers.transfer_weights` to reuse trained weights) or set "
            "`max_relative_shift`.")

  # -- Weights. ---------------------------------------------------------------------------

  def build(self, input_shape):
    shape = self._checked_input_shape(input_shape)
    reaches = self._table_reaches(shape)
    self._check_covered(shape, reaches)
    self._reaches = reaches
    self._build_projection(shape)
    for axis, reach in self._reaches.items():
      setattr(self, f"{axis}_embeddings",
              self._add_kernel(f"{axis}_embeddings", (2 * reach + 1, self._key_dim)))
    if self._uses_column_norm:
      self.column_norm = self._add_norm("column_norm", shape[:3] + [self.filters])
    super().build(input_shape)

  # -- Forward pass. ------------------------------------------------------------------------

  def _project(self, inputs):
    """Keys, queries and values (eq. 3) and each attended axis's `P` (eqs. 5-6)."""
    shape = inputs.shape.as_list()
    self._check_covered(shape, self._reaches)
    dynamic = tf.shape(inputs)
    positions = {}
    for axis in self._attended_axes:
      dimension = ops.attention.AXIS_DIMENSION[axis]
      length = shape[dimension]
      if length is None:
        length = dynamic[dimension]
        if self.max_relative_shift is None:
          tf.debugging.assert_less_equal(
              length, self._reaches[axis] + 1,
              message=f"{type(self).__name__}: the input's {axis} length exceeds what "
              "its relative embeddings cover")
      table = tf.cast(getattr(self, f"{axis}_embeddings"), self.compute_dtype)
      positions[axis] = ops.relative_to_absolute(table, length, self.max_relative_shift)
    keys, queries, values = self._project_kqv(inputs)
    return keys, queries, values, positions

  def call(self, inputs, training=None):
    keys, queries, values, positions = self._project(inputs)
    return self._output(self._attend(keys, queries, values, positions, training), inputs)

  def _normalize_column_output(self, column_output, training):
    """Appendix B: batch normalisation between the column and the row attention."""
    shape = tf.shape(column_output)
    flat = tf.reshape(column_output, [shape[0], shape[1], shape[2], self.filters])
    return tf.reshape(self.column_norm(flat, training=training), shape)

  def get_config(self):
    config = super().get_config()
    config.update(
        max_relative_shift=self.max_relative_shift,
        spatial_size=self.spatial_size,
        norm_momentum=self.norm_momentum,
        norm_epsilon=self.norm_epsilon,
        use_sync_bn=self.use_sync_bn,
    )
    return config


class GlobalSelfAttentionDefinition(AxialAttentionBase):
  """The GSA module (Section 3.1, Fig. 1, Appendix B): content plus axial positional attention.

  Input `(batch, height, width, channels)`, output `(batch, height, width, filters)`.

  - Keys, queries and values come from one fused 1x1 projection (eq. 3) and are split
    into `num_heads` heads. Keys/queries have `key_channels` channels (default: the
    input's), values have `filters` (the paper's setting).
  - Content attention (eqs. 1, 4): `Q (softmax(K)^T V)`, keys softmax-normalised over
    all pixels, queries not normalised. Linear in the number of pixels.
  - Positional attention (eqs. 2, 5-7): column attention, batch normalisation, row
    attention, with the same queries; learned relative position embeddings as keys (one
    table per axis, shared by the heads), no softmax. The column attention takes `V`, the
    row attention takes the normalised column output.
  - Output = content + positional (eq. 8).
  - Optionally (not in the paper), the queries of both branches are normalised first
    (`query_normalization`), which bounds how the module grows with the scale of its
    input ('l2': linearly).

  Weights: `kqv_kernel` `(channels, heads, 2 * key_channels / heads + filters / heads)`
  (without the keys' share when `use_content=False`), `column_embeddings` and
  `row_embeddings` `(2M + 1, key_channels / heads)` for each positional term that is on
  (`M` is `max_relative_shift`, or the covered length minus one), the
  `column_norm` batch normalisation when both are on, and `query_scale` `(heads,)` with
  `query_normalization='l2'`.
  """

  def __init__(self,
               filters: int,
               *,
               num_heads: int = spec.DEFAULT_NUM_HEADS,
               key_channels: Optional[int] = None,
               max_relative_shift: Optional[int] = None,
               spatial_size: Union[None, int, Sequence[int]] = None,
               use_content: bool = True,
               use_column: bool = True,
               use_row: bool = True,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               query_normalization: Optional[str] = None,
               **kwargs):
    """Creates a GSA module; its weights are made when it first sees an input.

    Args:
      filters: int, the output (value) channels; divisible by `num_heads`.
      num_heads: int, the attention heads (the paper uses 8).
      key_channels: int or None, the key/query channels, divisible by `num_heads`;
        None (default) takes the input's channels.
      max_relative_shift: int >= 0 or None, `L` of eq. 5: the farthest pixel a
        positional attention reaches along its axis. None (default) is global
        attention: the embedding tables then cover `spatial_size`, or the input size
        seen at build time, and larger inputs are an error. With `L` set the tables
        have `2L + 1` rows and any input size works.
      spatial_size: None, an int or a `(height, width)` pair, the size the embedding
        tables of a global layer cover; inputs may be smaller. None (default) takes
        the input size at build time.
      use_content: bool, whether the content attention (eqs. 1, 4) is on.
      use_column: bool, whether the column positional attention (eqs. 2, 5-7) is on.
      use_row: bool, whether the row positional attention (eqs. 2, 5-7) is on. At
        least one of the three must be; Table 4's ablations turn the others off, and
        `gsa_keras.spec.GSA_VARIANTS` names the combinations (see `from_variant`).
      kernel_initializer: a Keras initializer or its name, for every weight: the
        projection kernel (eq. 3) and the relative embeddings (eq. 5).
      kernel_regularizer: a Keras regularizer or None, for the same weights (the Model
        Garden applies weight decay as a regularizer).
      norm_momentum: float, the momentum of the batch normalisation between the column
        and the row attention (present only when both are on; Appendix B). Default
        `gsa_keras.spec.Architecture`'s (0.9, not Keras's 0.99, so that its moving
        statistics follow the data within a few dozen steps and a briefly fitted
        model evaluates as it trains).
      norm_epsilon: float, that batch normalisation's epsilon; default the
        architecture's (1e-5).
      use_sync_bn: bool, whether that batch normalisation synchronises its batch
        statistics across replicas.
      query_normalization: None, 'softmax' or 'l2', a normalisation of the queries
        of both branches (`gsa_keras.ops.attention.normalize_queries`). None (default)
        is the paper's module (Section 3.1 leaves the queries unnormalised on
        purpose). Unnormalised, the module is cubic in the scale of its input in
        evaluation mode, so a network can answer inputs unlike its training data
        with huge logits. 'l2' (unit norm per head times a learned per-head scale,
        initialised to sqrt(key channels per head)) makes it linear; 'softmax' (Shen
        et al. 2018's normalisation, which the paper removed) about x^1.1-1.7, as a
        softmax sharpens when its input grows.
      **kwargs: the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).

    Raises:
      ValueError: an argument out of range, or all of `use_content`, `use_column` and
        `use_row` False.
    """
    if not (use_content or use_column or use_row):
      raise ValueError("At least one of `use_content`, `use_column` and `use_row` must be "
                       "True; got all three False.")
    spec.check_query_normalization(query_normalization)
    super().__init__(filters, num_heads=num_heads, key_channels=key_channels,
                     max_relative_shift=max_relative_shift, spatial_size=spatial_size,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
                     norm_epsilon=norm_epsilon, use_sync_bn=use_sync_bn, **kwargs)
    self.use_content = bool(use_content)
    self.use_column = bool(use_column)
    self.use_row = bool(use_row)
    self.query_normalization = query_normalization

  @property
  def _uses_keys(self):
    return self.use_content

  def build(self, input_shape):
    super().build(input_shape)
    if self.query_normalization == "l2":
      self.query_scale = self.add_weight(
          name="query_scale", shape=(self.num_heads,), trainable=True,
          initializer=self._keras.initializers.Constant(math.sqrt(self._key_dim)))

  def _project(self, inputs):
    keys, queries, values, positions = super()._project(inputs)
    queries = ops.normalize_queries(queries, self.query_normalization,
                                    getattr(self, "query_scale", None))
    return keys, queries, values, positions

  @property
  def _attended_axes(self):
    return tuple(axis for axis, used in zip(ops.AXES, (self.use_column, self.use_row))
                 if used)

  def _attend(self, keys, queries, values, positions, training):
    outputs = []
    if self.use_content:
      outputs.append(ops.content_attention(keys, queries, values))
    if positions:
      positional = values
      for axis in self._attended_axes:
        if axis == "row" and self._uses_column_norm:
          positional = self._normalize_column_output(positional, training)
        positional = ops.positional_attention(queries, positional, positions[axis], axis)
      outputs.append(positional)
    return tf.add_n(outputs)  # eq. 8

  def attention_weights(self, inputs):
    """The module's attention weights for `inputs`, by the functions of its output.

    Args:
      inputs: `(batch, height, width, channels)`, as for `call`; the layer is built
        on first use.

    Returns:
      A dict with an entry per term the layer has (Table 4), each `(batch, height,
      width, heads, ...)`, in the compute dtype:
      - 'content': eq. 4's `softmax(K)`, `(..., heads, key_channels)`: for each head
        and key channel, a distribution over all pixels (it sums to 1 over height and
        width), the weights of the global context `C = softmax(K)^T V`.
      - 'column': eq. 7's `S = Q P` along columns, `(..., heads, height)`: the weights
        that pixel (x, y) gives the pixels (i, y) of its column. No softmax (eq. 2).
      - 'row': the same along rows, `(..., heads, width)`: weights of pixels (x, j).
    """
    inputs = tf.convert_to_tensor(inputs, dtype=self.compute_dtype)
    if not self.built:
      self.build(inputs.shape)
    keys, queries, _, positions = self._project(inputs)
    weights = {}
    if self.use_content:
      weights["content"] = ops.spatial_softmax(keys)
    for axis, table in positions.items():
      weights[axis] = ops.positional_scores(queries, table, axis)
    return weights

  def get_config(self):
    config = super().get_config()
    config.update(use_content=self.use_content, use_column=self.use_column,
                  use_row=self.use_row, query_normalization=self.query_normalization)
    return config

  @classmethod
  def from_variant(cls, variant, filters, **kwargs):
    """A layer for a named Table 4 variant, e.g. `from_variant('positional', 64)`."""
    if variant not in spec.GSA_VARIANTS:
      raise ValueError(f"`variant` must be one of {list(spec.GSA_VARIANTS)}, "
                       f"got {variant!r}.")
    return cls(filters, **spec.GSA_VARIANTS[variant], **kwargs)


class AxialContentPositionalAttentionDefinition(AxialAttentionBase):
  """Table 2's baseline: axial attention on content and positions (Ramachandran et al. 2019).

  Along each column, then (after batch normalisation) along each row:
  `softmax_i(q . k_i + q . r_{i-x}) v_i`. Same projection (eq. 3), relative embeddings
  (eq. 5) and batch normalisation as the GSA module, hence the same parameter count and
  weight names; the content interaction is axial instead of global.
  """

  def __init__(self,
               filters: int,
               *,
               num_heads: int = spec.DEFAULT_NUM_HEADS,
               key_channels: Optional[int] = None,
               max_relative_shift: Optional[int] = None,
               spatial_size: Union[None, int, Sequence[int]] = None,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               norm_momentum: float = spec.default("norm_momentum"),
               norm_epsilon: float = spec.default("norm_epsilon"),
               use_sync_bn: bool = False,
               **kwargs):
    """Creates the axial baseline; its weights are made when it first sees an input.

    Args:
      filters: int, the output (value) channels; divisible by `num_heads`.
      num_heads: int, the attention heads (the paper uses 8).
      key_channels: int or None, the key/query channels, divisible by `num_heads`;
        None (default) takes the input's channels.
      max_relative_shift: int >= 0 or None, `L` of eq. 5: keys farther than `L`
        pixels along the axis are masked out of the softmax, and the embedding tables
        have `2L + 1` rows (any input size works). None (default) is global axial
        attention: the tables then cover `spatial_size`, or the input size seen at
        build time, and larger inputs are an error.
      spatial_size: None, an int or a `(height, width)` pair, the size the embedding
        tables of a global layer cover; inputs may be smaller. None (default) takes
        the input size at build time.
      kernel_initializer: a Keras initializer or its name, for every weight: the
        projection kernel and the relative embeddings.
      kernel_regularizer: a Keras regularizer or None, for the same weights.
      norm_momentum: float, the momentum of the batch normalisation between the column
        and the row attention; default the architecture's (0.9), as the GSA module's.
      norm_epsilon: float, that batch normalisation's epsilon; default the
        architecture's (1e-5).
      use_sync_bn: bool, whether that batch normalisation synchronises its batch
        statistics across replicas.
      **kwargs: the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).

    Raises:
      ValueError: an argument out of range.
    """
    super().__init__(filters, num_heads=num_heads, key_channels=key_channels,
                     max_relative_shift=max_relative_shift, spatial_size=spatial_size,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, norm_momentum=norm_momentum,
                     norm_epsilon=norm_epsilon, use_sync_bn=use_sync_bn, **kwargs)

  def _attend(self, keys, queries, values, positions, training):
    outputs = values
    for axis in ops.AXES:
      if axis == "row":
        outputs = self._normalize_column_output(outputs, training)
      length = positions[axis].shape[0] or tf.shape(positions[axis])[0]
      reach = self.max_relative_shift if self.max_relative_shift is not None else length
      mask = ops.neighbourhood_mask(length, reach)
      outputs = ops.axial_softmax_attention(queries, keys, outputs, positions[axis], mask,
                                            axis)
    return outputs


class LocalSelfAttentionDefinition(AttentionBase):
  """Table 3's local baseline: stand-alone self-attention (Ramachandran et al. 2019).

  Each pixel attends with a softmax to its `kernel_size x kernel_size` neighbourhood
  N(i, j), per head (Ramachandran et al. 2019, `gsa_keras.ops.local_attention`):

      y_ij = sum_{(a,b) in N(i,j)} softmax_ab(q_ij . k_ab + q_ij . r_{a-i,b-j}) v_ab

  Input `(batch, height, width, channels)`, output `(batch, height, width, filters)`,
  any input size (the window does not depend on it). Neighbours outside the image are
  padding and take no weight.

  - Keys, queries and values come from the GSA module's fused 1x1 projection (eq. 3),
    so the layer has the GSA module's parameters but for the embeddings.
  - `r_{a-i,b-j}` concatenates a row-offset embedding (`row_offset_embeddings`,
    `(kernel_size, key_channels / num_heads / 2)`, row `a - i + kernel_size // 2`) for
    the first half of each head's key channels and a column-offset embedding
    (`column_offset_embeddings`, the same shape) for the second half; both are shared
    by the heads.
  """

  def __init__(self,
               filters: int,
               *,
               num_heads: int = spec.DEFAULT_NUM_HEADS,
               kernel_size: int = spec.LOCAL_KERNEL_SIZE,
               key_channels: Optional[int] = None,
               kernel_initializer: Any = "VarianceScaling",
               kernel_regularizer: Any = None,
               **kwargs):
    """Creates the local baseline; its weights are made when it first sees an input.

    Args:
      filters: int, the output (value) channels; divisible by `num_heads`.
      num_heads: int, the attention heads (8 in the paper's baseline).
      kernel_size: int, the neighbourhood's side, odd (default 7, Ramachandran et
        al.'s); it sets the embedding tables' rows.
      key_channels: int or None, the key/query channels, divisible by `num_heads` into
        an even number per head (half for each embedding table); None (default) takes
        the input's channels.
      kernel_initializer: a Keras initializer or its name, for every weight: the
        projection kernel (eq. 3) and both embedding tables.
      kernel_regularizer: a Keras regularizer or None, for the same weights.
      **kwargs: the base `Layer`'s keywords (`name`, `dtype`, `trainable`, ...).

    Raises:
      ValueError: an argument out of range.
    """
    super().__init__(filters, num_heads=num_heads, key_channels=key_channels,
                     kernel_initializer=kernel_initializer,
                     kernel_regularizer=kernel_regularizer, **kwargs)
    self.kernel_size = spec.check_kernel_size(kernel_size)
    if key_channels is not None:
      spec.check_local_key_dim(key_channels // num_heads,
                               f"`key_channels`={key_channels} over `num_heads`={num_heads}")

  def build(self, input_shape):
    shape = self._checked_input_shape(input_shape)
    spec.check_local_key_dim(
        (self.key_channels or shape[3]) // self.num_heads,
        f"{type(self).__name__}: the input channels ({shape[3]}, the default "
        f"`key_channels`) over `num_heads`={self.num_heads}")
    self._build_projection(shape)
    table_shape = (self.kernel_size, self._key_dim // 2)
    self.row_offset_embeddings = self._add_kernel("row_offset_embeddings", table_shape)
    self.column_offset_embeddings = self._add_kernel("column_offset_embeddings",
                                                     table_shape)
    super().build(input_shape)

  def call(self, inputs, training=None):
    del training  # No batch normalisation or dropout inside.
    keys, queries, values = self._project_kqv(inputs)
    tables = [tf.cast(table, self.compute_dtype)
              for table in (self.row_offset_embeddings, self.column_offset_embeddings)]
    return self._output(ops.local_attention(queries, keys, values, *tables), inputs)

  def get_config(self):
    config = super().get_config()
    config.update(kernel_size=self.kernel_size)
    return config
