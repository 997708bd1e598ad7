"""GSA layers for tf_keras (Keras 2: `TF_USE_LEGACY_KERAS=1`, the Model Garden's Keras).

Each layer is its definition in `gsa_keras.layers.definitions` (arguments, weights,
forward pass, config) on tf_keras's `Layer`, registered as `gsa_keras>ClassName`.
"""

import tf_keras

from gsa_keras.layers import binding
from gsa_keras.layers import definitions
from gsa_keras.layers import san
from gsa_keras.layers.weights import transfer_weights

_serializable = tf_keras.saving.register_keras_serializable(
    package=binding.SERIALIZATION_PACKAGE)


@_serializable
class GlobalSelfAttention(definitions.GlobalSelfAttentionDefinition, tf_keras.layers.Layer):
  """The GSA module (Section 3.1, Fig. 1, Appendix B) as a tf_keras layer.

  Content attention `Q (softmax(K)^T V)` (eqs. 1, 4) plus column then row positional
  attention with relative position embeddings (eqs. 2, 5-7), summed (eq. 8), on one
  fused K/Q/V projection (eq. 3). `(batch, height, width, channels)` in, `(batch,
  height, width, filters)` out. `use_content`, `use_column` and `use_row` select
  Table 4's ablations (`from_variant` by name); `attention_weights(inputs)` returns
  the maps it attends with. The arguments are documented in `__init__`.
  """

  _keras = tf_keras


@_serializable
class AxialContentPositionalAttention(definitions.AxialContentPositionalAttentionDefinition,
                                      tf_keras.layers.Layer):
  """Table 2's axial baseline (Ramachandran et al. 2019) as a tf_keras layer.

  Along each column, then (after batch normalisation) along each row:
  `softmax_i(q . k_i + q . r_{i-x}) v_i`, with the GSA module's projection (eq. 3),
  relative embeddings (eq. 5) and batch normalisation. `(batch, height, width,
  channels)` in, `(batch, height, width, filters)` out. The arguments are documented
  in `__init__`.
  """

  _keras = tf_keras


@_serializable
class LocalSelfAttention(definitions.LocalSelfAttentionDefinition, tf_keras.layers.Layer):
  """Table 3's local baseline, stand-alone self-attention (Ramachandran et al. 2019), as
  a tf_keras layer.

  Each pixel attends with a softmax to its `kernel_size x kernel_size` neighbourhood:
  `y_ij = sum_ab softmax_ab(q_ij . k_ab + q_ij . r_{a-i,b-j}) v_ab`, on the GSA
  module's projection (eq. 3), with row- and column-offset embeddings; padding takes
  no weight, any input size works. The arguments are documented in `__init__`.
  """

  _keras = tf_keras


@_serializable
class PairwiseSelfAttention(san.PairwiseSelfAttentionDefinition, tf_keras.layers.Layer):
  """SAN's pairwise self-attention (Zhao et al. 2020, eq. 2) as a tf_keras layer.

  `y_c(i) = sum_{j in R(i)} softmax_j(gamma([phi(x_i) - psi(x_j), p_i - p_j]))_{c mod W}
  beta_c(x_j)` over the reflection-padded `kernel_size x kernel_size` footprint R(i),
  with `W = filters / share_planes` weight channels shared in an interleaved way and `p`
  a 1x1 convolution of the pixel coordinates. `(batch, height, width, channels)` in,
  `(batch, height, width, filters)` out; inputs need more than `kernel_size // 2` pixels
  along each side. The arguments are documented in `__init__`.
  """

  _keras = tf_keras


@_serializable
class PatchwiseSelfAttention(san.PatchwiseSelfAttentionDefinition, tf_keras.layers.Layer):
  """SAN's patchwise self-attention (Zhao et al. 2020, eq. 4) as a tf_keras layer.

  `y_c(i) = sum_{j in R(i)} gamma([phi(x_i), psi(x_j) for j in R(i)])_{j, c mod W}
  beta_c(x_j)` over the reflection-padded `kernel_size x kernel_size` footprint R(i),
  with `W = filters / share_planes` weight channels shared in an interleaved way and no
  softmax. `(batch, height, width, channels)` in, `(batch, height, width, filters)` out;
  inputs need more than `kernel_size // 2` pixels along each side. The arguments are
  documented in `__init__`.
  """

  _keras = tf_keras


__all__ = ["GlobalSelfAttention", "AxialContentPositionalAttention", "LocalSelfAttention",
           "PairwiseSelfAttention", "PatchwiseSelfAttention", "transfer_weights"]
