"""SAN's two self-attention operators (Zhao, Jia, Koltun 2020, "Exploring Self-attention
for Image Recognition"), on the math core's conventions.

Both compute, for every pixel i and output channel c (Zhao et al. 2020, eqs. 2 and 4):

    y_c(i) = sum_{j in R(i)} w_{c mod W}(i, j) beta_c(x_j),      W = C_out / share

over the `k x k` footprint R(i) of i, with reflection padding at the borders. The
weight channels are shared across the output channels in an interleaved way: output
channel c uses weight channel `c mod W` (SAN's `share_planes` = C_out / W output channels
per weight channel), so one weight channel serves channels `w, w + W, w + 2W, ...`.
The two operators differ in how the weights come about:

- pairwise (eq. 2): `w(i, j) = softmax_j(gamma([phi(x_i) - psi(x_j), p_i - p_j]))`, one
  relation vector per pair (i, j): the subtraction relation concatenated with the
  difference of the pixels' position encodings `p` (a 1x1 convolution, 2 -> 2 channels,
  of the pixel coordinates on a [-1, 1] grid), then `gamma` and a softmax over the k^2
  neighbours of i;
- patchwise (eq. 4): `w(i) = gamma([phi(x_i), psi(x_j) for j in R(i)])`, one relation
  vector per pixel, the concatenation of `phi` at i with `psi` on i's whole footprint;
  `gamma` maps it to k^2 weights per weight channel, one per neighbour, and there is no
  softmax.

`phi`, `psi`, `beta` and `gamma` (1x1 convolutions and batch norms) live in the layers
(`gsa_keras.layers.san`); this module holds the parts between them.

Conventions: tensors are channels-last, `(b, x, y, c)` (`x` row, `y` column). A
footprint's neighbours `m = (a - i + r) k + (b - j + r)` are row-major offsets
`(a - i, b - j)` in `[-r, r]^2`, `r = k // 2`, as in `gsa_keras.ops.local_attention`.
Per-pair tensors are `(b, x, y, m, c)` and attention weights `(b, x, y, m, W)`.

Reflection padding (SAN's `pad_mode=1`, PyTorch's `ReflectionPad2d`, `tf.pad`'s
'REFLECT'): a coordinate `a < 0` reads `-a`, a coordinate `a > n - 1` reads
`2 (n - 1) - a`; the border pixel itself is not repeated. It mirrors at most once, so it
needs `r < n`, i.e. an image of more than `k // 2` pixels along each side; smaller
inputs raise a ValueError (SAN's CUDA kernels would read out of bounds, and
`ReflectionPad2d` raises).

How it is evaluated (following `gsa_keras.ops.local_attention`): every footprint is
gathered once per tensor from its image's pixels, `(b, x y, c)` -> `(b, x y, k k, c)`,
by one `tf.gather` with an index table of the reflected neighbours computed from the
image size (static under XLA); the pixels' own terms (`phi(x_i)`) broadcast against
their neighbours' instead of being gathered, and the position term is computed once
per image size and broadcast over the batch. The largest tensors are the gathered
neighbourhoods of `beta` (`k^2 C_out` per pixel) and, for the pairwise operator, the
relation vectors (`k^2 (C_out / 16 + 2)` per pixel). Softmaxes run in float32 whatever
the compute dtype; everything else runs in the inputs' dtype.
"""

import tensorflow as tf

from gsa_keras.ops.attention import dimensions

# The number of position channels SAN's pairwise relation appends: the column and the
# row coordinate.
POSITION_CHANNELS = 2


def check_reflection_size(height, width, kernel_size):
  """Raises ValueError unless reflection padding of a `k x k` footprint fits the image.

  Reflection mirrors `k // 2` pixels about the border pixel, so it needs more than
  `k // 2` pixels along each side. Sizes that are not Python ints (unknown until run
  time) are not checked here.
  """
  reach = kernel_size // 2
  known = [size for size in (height, width) if isinstance(size, int)]
  if known and min(known) <= reach:
    shown = "x".join(str(size) if isinstance(size, int) else "?" for size in (height, width))
    raise ValueError(
        f"`kernel_size`={kernel_size} needs inputs of more than {reach} pixels along "
        f"each side (reflection padding mirrors kernel_size // 2 = {reach} pixels "
        f"about the border pixel), got a {shown} input. Use inputs of at "
        f"least {reach + 1}x{reach + 1} pixels, or `kernel_size` <= {2 * min(known) - 1} "
        "for this one.")


def _reflect(coordinates, size):
  """Coordinates in `[-(size - 1), 2 (size - 1)]` reflected into `[0, size)`.

  `a < 0` -> `-a`, `a > size - 1` -> `2 (size - 1) - a`, others unchanged: with
  `a' = |a|`, that is `(size - 1) - |(size - 1) - a'|`.
  """
  last = size - 1
  return last - tf.abs(last - tf.abs(coordinates))


def reflected_neighbourhood(height, width, kernel_size):
  """The `k x k` footprint R(i) of every pixel, reflected at the borders.

  Args:
    height, width: the image size (Python ints, or scalar tensors when unknown until
      run time).
    kernel_size: `k`, odd.

  Returns:
    `(height * width, k * k)` int32: entry `[p, m]` is the flat index `a * width + b`
    of neighbour `m` (row-major offsets) of pixel `p`, its coordinates reflected into
    the image.

  Raises:
    ValueError: the image has `k // 2` pixels or fewer along a side (when known).
  """
  check_reflection_size(height, width, kernel_size)
  reach = kernel_size // 2
  # Sizes known only at run time are checked then; the table depends on the checks, so
  # they run before any gather reads it (on GPU and TPU, a gather out of range reads 0).
  checks = [tf.debugging.assert_greater(
      size, reach, message=f"`kernel_size`={kernel_size} needs inputs of more than "
      f"{reach} pixels along each side for reflection padding")
            for size in (height, width) if not isinstance(size, int)]
  with tf.control_dependencies([check for check in checks if check is not None]):
    offsets = tf.range(kernel_size) - reach
    rows = _reflect(tf.range(height)[:, tf.newaxis] + offsets, height)  # (x, k)
    columns = _reflect(tf.range(width)[:, tf.newaxis] + offsets, width)  # (y, k)
    # (x, y, k, k): the row window broadcast over columns, the column window over rows.
    index = (rows[:, tf.newaxis, :, tf.newaxis] * width +
             columns[tf.newaxis, :, tf.newaxis, :])
    return tf.reshape(index, [height * width, kernel_size * kernel_size])


def gather_neighbours(tensor, index):
  """`(b, x, y, c)` -> `(b, x, y, m, c)`: every pixel's footprint, by an index table
  from `reflected_neighbourhood`."""
  batch, height, width, channels = dimensions(tensor)
  window = index.shape[-1]
  pixels = tf.reshape(tensor, [batch, height * width, channels])
  neighbours = tf.gather(pixels, index, axis=1)  # (b, x y, m, c)
  return tf.reshape(neighbours, [batch, height, width, window, channels])


def position_grid(height, width, dtype=tf.float32):
  """SAN's pixel coordinates on a [-1, 1] grid, `(x, y, 2)`.

  Channel 0 is the column coordinate, `linspace(-1, 1, width)[y]`, channel 1 the row
  coordinate, `linspace(-1, 1, height)[x]` (SAN's `position`: width first). A side of
  one pixel has the coordinate -1.
  """
  columns = tf.linspace(tf.constant(-1.0, dtype), tf.constant(1.0, dtype), width)
  rows = tf.linspace(tf.constant(-1.0, dtype), tf.constant(1.0, dtype), height)
  return tf.stack([tf.broadcast_to(columns[tf.newaxis, :], [height, width]),
                   tf.broadcast_to(rows[:, tf.newaxis], [height, width])], axis=-1)


def position_differences(positions, index):
  """The pairwise relation's position term `p_i - p_j` for every pixel i and neighbour j.

  Args:
    positions: `p`, `(x, y, 2)`, the encoded coordinates of every pixel (SAN: a 1x1
      convolution of `position_grid`; a bias of that convolution cancels here).
    index: `(x y, m)` from `reflected_neighbourhood`: a reflected neighbour j takes
      the position of the pixel it reads.

  Returns:
    `(x, y, m, 2)`; the same for every image of a batch.
  """
  height, width, channels = dimensions(positions)
  pixels = tf.reshape(positions, [height * width, channels])
  neighbours = tf.gather(pixels, index)  # (x y, m, 2)
  differences = pixels[:, tf.newaxis, :] - neighbours
  return tf.reshape(differences, [height, width, index.shape[-1], channels])


def pairwise_relation(queries, keys, position_terms, index):
  """Eq. 2's relation for every pixel i and neighbour j: `[phi(x_i) - psi(x_j), p_i - p_j]`.

  Args:
    queries: `phi(x)`, `(b, x, y, r)`.
    keys: `psi(x)`, `(b, x, y, r)`.
    position_terms: `p_i - p_j`, `(x, y, m, 2)` from `position_differences`.
    index: `(x y, m)` from `reflected_neighbourhood`.

  Returns:
    `(b, x, y, m, r + 2)`: the subtraction relation's `r` channels, then the two
    position channels (SAN's order), `gamma`'s input.
  """
  relation = queries[..., tf.newaxis, :] - gather_neighbours(keys, index)  # (b, x, y, m, r)
  positions = tf.broadcast_to(tf.cast(position_terms, relation.dtype)[tf.newaxis],
                              dimensions(relation)[:-1] + [position_terms.shape[-1]])
  return tf.concat([relation, positions], axis=-1)


def neighbour_softmax(logits):
  """Eq. 2's normalisation: a softmax over the footprint's k^2 neighbours (axis -2 of
  `(b, x, y, m, W)`), in float32, returned in the logits' dtype."""
  weights = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-2)
  return tf.cast(weights, logits.dtype)


def patchwise_relation(queries, keys, index):
  """Eq. 4's relation for every pixel i: `[phi(x_i), psi(x_j) for j in R(i)]`.

  Args:
    queries: `phi(x)`, `(b, x, y, r)`.
    keys: `psi(x)`, `(b, x, y, r)`.
    index: `(x y, m)` from `reflected_neighbourhood`.

  Returns:
    `(b, x, y, r (k^2 + 1))`: `phi(x_i)`'s `r` channels, then the footprint's `psi`
    channel-major, as SAN's `Unfold` lays it out: `psi` channel `c` of neighbour `m` at
    `r + c k^2 + m`.
  """
  neighbours = gather_neighbours(keys, index)  # (b, x, y, m, r)
  batch, height, width, window, channels = dimensions(neighbours)
  channel_major = tf.reshape(tf.transpose(neighbours, (0, 1, 2, 4, 3)),
                             [batch, height, width, channels * window])
  return tf.concat([queries, channel_major], axis=-1)


def patchwise_weights(outputs, kernel_size):
  """Eq. 4's weights from `gamma`'s output, no softmax: `(b, x, y, W k^2)` ->
  `(b, x, y, m, W)`.

  `gamma`'s output channel `w k^2 + m` is the weight of neighbour `m` in weight channel
  `w` (weight-channel-major, SAN's `view(n, W, k^2, pixels)`).
  """
  batch, height, width, channels = dimensions(outputs)
  window = kernel_size * kernel_size
  by_channel = tf.reshape(outputs, [batch, height, width, channels // window, window])
  return tf.transpose(by_channel, (0, 1, 2, 4, 3))


def interleaved_aggregation(weights, values, index):
  """`y_c(i) = sum_{j in R(i)} w_{c mod W}(i, j) beta_c(x_j)`: interleaved weight sharing.

  Output channel `c = s W + w` (`s` in `[0, C / W)`) takes weight channel `w = c mod W`,
  so splitting the channels as `(C / W, W)` lines each up with its weight channel.

  Args:
    weights: `(b, x, y, m, W)`.
    values: `beta(x)`, `(b, x, y, C)`, `C` a multiple of `W`.
    index: `(x y, m)` from `reflected_neighbourhood`.

  Returns:
    `(b, x, y, C)`.
  """
  neighbours = gather_neighbours(values, index)  # (b, x, y, m, C)
  batch, height, width, window, channels = dimensions(neighbours)
  weight_channels = weights.shape[-1]
  if channels % weight_channels:
    raise ValueError(f"The values' {channels} channels must be a multiple of the "
                     f"weights' {weight_channels} channels.")
  grouped = tf.reshape(neighbours, [batch, height, width, window,
                                    channels // weight_channels, weight_channels])
  # expand_dims, not `[..., tf.newaxis, :]`: TFLite has no 6-D strided slice.
  outputs = tf.reduce_sum(tf.expand_dims(weights, -2) * grouped, axis=3)  # (b, x, y, s, w)
  return tf.reshape(outputs, [batch, height, width, channels])
