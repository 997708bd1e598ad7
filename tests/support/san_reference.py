"""Independent loop-by-loop NumPy (float64) reference of SAN's two self-attention operators.

Written from Zhao, Jia, Koltun 2020, "Exploring Self-attention for Image Recognition"
(eq. 2 pairwise, eq. 4 patchwise) and the layout of SAN's public code, NOT from the
layer code: explicit Python loops over batch elements, pixels, neighbours and output
channels; reflection padding by index arithmetic (no `np.pad`); at most a
vector-matrix product (a 1x1 convolution of one pixel or pair) inside a loop.

Conventions (the layers' weights, `gsa_keras.layers.san`):

* Input ``x``: (b, h, w, d), channels-last; kernels are (in, out), ``x @ kernel``.
* ``weights``: a dict of float arrays: ``phi_kernel``/``phi_bias``,
  ``psi_kernel``/``psi_bias``, ``beta_kernel``/``beta_bias``, ``gamma_hidden_kernel``,
  ``gamma_output_kernel``/``gamma_output_bias``, the batch norms ``gamma_input_norm`` and
  ``gamma_hidden_norm`` (each a dict with ``gamma``, ``beta``, ``moving_mean``,
  ``moving_variance``) and, pairwise only, ``position_kernel``/``position_bias``.
* Neighbour ``m`` of pixel (i, j) is the offset ``(m // k - r, m % k - r)``, ``r = k // 2``.
* Pairwise relation channels: the ``r`` subtraction channels, then p's two (column, row).
* Patchwise relation channels: ``phi``'s ``r``, then ``psi`` of neighbour ``m``, channel
  ``c`` at ``r + c * k^2 + m``; gamma's output channel ``w * k^2 + m`` weighs neighbour
  ``m`` in weight channel ``w``.

The keyword-only ``border`` and ``weight_channel`` arguments exist only so that the tests
can show that the reference discriminates (clamped borders, block-wise channel sharing
must NOT match the layer); leave them at their defaults for SAN's semantics.
"""

import numpy as np


def reflect(coordinate, size):
  """Reflection padding of one coordinate: -a below 0, 2 (size - 1) - a past the end."""
  if coordinate < 0:
    coordinate = -coordinate
  if coordinate > size - 1:
    coordinate = 2 * (size - 1) - coordinate
  assert 0 <= coordinate < size, "the image is too small to reflect this far"
  return coordinate


def clamp(coordinate, size):
  """Replicate padding of one coordinate (not SAN's; for the discrimination tests)."""
  return min(max(coordinate, 0), size - 1)


BORDERS = {"reflect": reflect, "clamp": clamp}


def interleaved(channel, weight_channels, share_planes):
  """SAN's sharing: output channel c uses weight channel c mod W."""
  del share_planes
  return channel % weight_channels


def blockwise(channel, weight_channels, share_planes):
  """Not SAN's: consecutive blocks of `share_planes` output channels share a weight."""
  del weight_channels
  return channel // share_planes


def footprint(i, j, height, width, kernel_size, border="reflect"):
  """The neighbours of pixel (i, j): a list of (m, a, b) in row-major offset order."""
  reach = kernel_size // 2
  neighbours = []
  for m in range(kernel_size * kernel_size):
    a = BORDERS[border](i + m // kernel_size - reach, height)
    b = BORDERS[border](j + m % kernel_size - reach, width)
    neighbours.append((m, a, b))
  return neighbours


def linspace(count, index):
  """`linspace(-1, 1, count)[index]`; -1 for a single point."""
  if count == 1:
    return -1.0
  return -1.0 + 2.0 * index / (count - 1)


def batch_norm(values, norm, epsilon, training):
  """Batch norm of `values` (..., c): statistics over every axis but the last (the
  batch's, biased variance, when training; else the moving ones)."""
  values = np.asarray(values, np.float64)
  if training:
    flat = values.reshape(-1, values.shape[-1])
    mean = np.array([np.mean(flat[:, c]) for c in range(flat.shape[1])])
    variance = np.array([np.mean((flat[:, c] - mean[c]) ** 2) for c in range(flat.shape[1])])
  else:
    mean, variance = norm["moving_mean"], norm["moving_variance"]
  return norm["gamma"] * (values - mean) / np.sqrt(variance + epsilon) + norm["beta"]


def _relu(values):
  return np.maximum(values, 0.0)


def _project(x, kernel, bias):
  """A 1x1 convolution with bias, pixel by pixel."""
  batch, height, width, _ = x.shape
  out = np.zeros((batch, height, width, kernel.shape[1]))
  for n in range(batch):
    for i in range(height):
      for j in range(width):
        out[n, i, j] = x[n, i, j] @ kernel + bias
  return out


def _gamma(relations, weights, epsilon, training):
  """gamma on an array of relation vectors (..., c): BN, ReLU, 1x1 conv (no bias), BN,
  ReLU, 1x1 conv with bias; vector by vector."""
  normed = _relu(batch_norm(relations, weights["gamma_input_norm"], epsilon, training))
  hidden = np.zeros(relations.shape[:-1] + (weights["gamma_hidden_kernel"].shape[1],))
  for at in np.ndindex(*relations.shape[:-1]):
    hidden[at] = normed[at] @ weights["gamma_hidden_kernel"]
  hidden = _relu(batch_norm(hidden, weights["gamma_hidden_norm"], epsilon, training))
  out = np.zeros(relations.shape[:-1] + (weights["gamma_output_kernel"].shape[1],))
  for at in np.ndindex(*relations.shape[:-1]):
    out[at] = hidden[at] @ weights["gamma_output_kernel"] + weights["gamma_output_bias"]
  return out


def _aggregate(attention, beta, kernel_size, share_planes, border, weight_channel):
  """y_c(i) = sum_j w_{weight_channel(c)}(i, j) beta_c(x_j); attention (b, h, w, m, W)."""
  batch, height, width, channels = beta.shape
  weight_channels = attention.shape[-1]
  y = np.zeros(beta.shape)
  for n in range(batch):
    for i in range(height):
      for j in range(width):
        for m, a, b in footprint(i, j, height, width, kernel_size, border):
          for c in range(channels):
            w = weight_channel(c, weight_channels, share_planes)
            y[n, i, j, c] += attention[n, i, j, m, w] * beta[n, a, b, c]
  return y


def _weights64(weights):
  return {name: ({key: np.asarray(v, np.float64) for key, v in value.items()}
                 if isinstance(value, dict) else np.asarray(value, np.float64))
          for name, value in weights.items()}


def pairwise_attention_weights(x, weights, *, kernel_size, epsilon=1e-5, training=False,
                               border="reflect"):
  """Eq. 2's weights softmax_j(gamma([phi(x_i) - psi(x_j), p_i - p_j])), (b, h, w, m, W)."""
  x = np.asarray(x, np.float64)
  weights = _weights64(weights)
  batch, height, width, _ = x.shape
  phi = _project(x, weights["phi_kernel"], weights["phi_bias"])
  psi = _project(x, weights["psi_kernel"], weights["psi_bias"])
  # p: a 1x1 convolution of (column, row) coordinates on a [-1, 1] grid.
  p = np.zeros((height, width, 2))
  for i in range(height):
    for j in range(width):
      coordinates = np.array([linspace(width, j), linspace(height, i)])
      p[i, j] = coordinates @ weights["position_kernel"] + weights["position_bias"]
  window = kernel_size * kernel_size
  relations = np.zeros((batch, height, width, window, phi.shape[-1] + 2))
  for n in range(batch):
    for i in range(height):
      for j in range(width):
        for m, a, b in footprint(i, j, height, width, kernel_size, border):
          relations[n, i, j, m] = np.concatenate([phi[n, i, j] - psi[n, a, b],
                                                  p[i, j] - p[a, b]])
  logits = _gamma(relations, weights, epsilon, training)
  attention = np.zeros(logits.shape)
  for n in range(batch):
    for i in range(height):
      for j in range(width):
        for w in range(logits.shape[-1]):
          column = logits[n, i, j, :, w]
          exponentials = np.exp(column - column.max())
          attention[n, i, j, :, w] = exponentials / exponentials.sum()
  return attention


def patchwise_attention_weights(x, weights, *, kernel_size, epsilon=1e-5, training=False,
                                border="reflect"):
  """Eq. 4's weights gamma([phi(x_i), psi(x_j) for j in R(i)]), (b, h, w, m, W)."""
  x = np.asarray(x, np.float64)
  weights = _weights64(weights)
  batch, height, width, _ = x.shape
  phi = _project(x, weights["phi_kernel"], weights["phi_bias"])
  psi = _project(x, weights["psi_kernel"], weights["psi_bias"])
  relation_channels = phi.shape[-1]
  window = kernel_size * kernel_size
  relations = np.zeros((batch, height, width, relation_channels * (window + 1)))
  for n in range(batch):
    for i in range(height):
      for j in range(width):
        relations[n, i, j, :relation_channels] = phi[n, i, j]
        for m, a, b in footprint(i, j, height, width, kernel_size, border):
          for c in range(relation_channels):
            relations[n, i, j, relation_channels + c * window + m] = psi[n, a, b, c]
  out = _gamma(relations, weights, epsilon, training)
  weight_channels = out.shape[-1] // window
  attention = np.zeros((batch, height, width, window, weight_channels))
  for m in range(window):
    for w in range(weight_channels):
      attention[..., m, w] = out[..., w * window + m]
  return attention


_ATTENTION_WEIGHTS = {"pairwise": pairwise_attention_weights,
                      "patchwise": patchwise_attention_weights}


def san_reference(operator, x, weights, *, kernel_size, share_planes, epsilon=1e-5,
                  training=False, border="reflect", weight_channel=interleaved):
  """The output y (b, h, w, C_out) of SAN's `operator` ('pairwise' or 'patchwise')."""
  attention = _ATTENTION_WEIGHTS[operator](x, weights, kernel_size=kernel_size,
                                           epsilon=epsilon, training=training, border=border)
  weights = _weights64(weights)
  beta = _project(np.asarray(x, np.float64), weights["beta_kernel"], weights["beta_bias"])
  return _aggregate(attention, beta, kernel_size, share_planes, border, weight_channel)
