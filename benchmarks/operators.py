"""The operators the suite compares, as tf_keras layers with their costs.

- `gsa`: the GSA module, the registered operator 'gsa' (`gsa_keras.operators`).
- `conv3x3`: the 3x3 convolution it replaces in a ResNet, same channels, no bias: the
  registered convolution.
- `local_attention`: Table 3's local self-attention over 7x7 neighbourhoods, the
  registered operator 'local', same heads and projection: the operator the paper's
  runtime claim compares GSA with.
- `san_pairwise`, `san_patchwise`: SAN's pairwise and patchwise self-attention (Zhao et
  al. 2020, the paper's other Table 3 baseline) over 7x7 reflection-padded footprints,
  the registered operators of the same names, as in the GSA-ResNet structure.
- `dense_attention`: dense global softmax attention with the same heads and the same
  fused K/Q/V projection (`gsa_keras.ops.project_kqv`): every pixel attends to every
  pixel, `softmax(Q K^T / sqrt(k)) V`, so time and memory grow with pixels^2.

The registered operators' layers are made by their registrations, as in a network with
`num_heads=NUM_HEADS`, and their FLOPs come from their rules (`gsa_keras.flops`); the
dense attention, which the project does not otherwise use, is counted here the same way.
"""

import math
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tf_keras

from gsa_keras import flops
from gsa_keras import operators as registry
from gsa_keras import ops
from gsa_keras import spec

GSA = "gsa"
CONV = "conv3x3"
LOCAL = "local_attention"
DENSE = "dense_attention"
SAN_PAIRWISE = registry.SAN_PAIRWISE
SAN_PATCHWISE = registry.SAN_PATCHWISE
OPERATORS = (GSA, CONV, LOCAL, SAN_PAIRWISE, SAN_PATCHWISE, DENSE)
LABELS = {GSA: "GSA", CONV: "Conv2D 3x3", LOCAL: "local attention 7x7",
          SAN_PAIRWISE: "SAN pairwise 7x7", SAN_PATCHWISE: "SAN patchwise 7x7",
          DENSE: "dense attention"}
# The suite's operators that the registry makes: their registered names.
REGISTERED = {GSA: registry.GSA, CONV: registry.CONVOLUTION, LOCAL: registry.LOCAL,
              SAN_PAIRWISE: registry.SAN_PAIRWISE, SAN_PATCHWISE: registry.SAN_PATCHWISE}
NUM_HEADS = 8
# Execution modes of `tf.function`: name -> `jit_compile`.
MODES = {"graph": False, "xla": True}
FORWARD = "forward"
FORWARD_BACKWARD = "forward+backward"
PASSES = (FORWARD, FORWARD_BACKWARD)
# Convention for achieved FLOP/s of a training pass: the backward pass costs twice the
# forward pass (one product for the input gradient, one for the weight gradient).
BACKWARD_FLOPS_FACTOR = 3
_FLOAT_BYTES = 4
# Peak memory of the dense attention in (batch, heads, pixels, pixels) float32 maps.
# Measured on TensorFlow 2.20's CPU kernels: ~1.1 maps forward (element-wise ops
# reuse their input's buffer), ~4.2 forward+backward (saved weights, gradients of
# weights and logits); rounded up for a margin.
_DENSE_PEAK_MAPS = {FORWARD: 2, FORWARD_BACKWARD: 5}


class DenseGlobalAttention(tf_keras.layers.Layer):
  """Softmax attention of every pixel over all pixels, per head (the O(N^2) baseline).

  Input `(batch, height, width, channels)`, output `(batch, height, width, filters)`;
  keys and queries have `channels / num_heads` channels per head, like the GSA module.
  """

  def __init__(self, filters, num_heads=NUM_HEADS, **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.num_heads = num_heads

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self._key_dim = channels // self.num_heads
    projected = 2 * self._key_dim + self.filters // self.num_heads
    self.kqv_kernel = self.add_weight(
        name="kqv_kernel", shape=(channels, self.num_heads, projected),
        initializer="glorot_uniform")
    super().build(input_shape)

  def call(self, inputs):
    keys, queries, values = ops.project_kqv(inputs, self.kqv_kernel, self._key_dim)
    shape = tf.shape(inputs)
    pixels = shape[1] * shape[2]

    def flat(t):
      return tf.reshape(t, [shape[0], pixels, self.num_heads, -1])

    logits = tf.einsum("bpnk,bqnk->bnpq", flat(queries), flat(keys))
    weights = tf.nn.softmax(logits / math.sqrt(self._key_dim), axis=-1)
    outputs = tf.einsum("bnpq,bqnv->bpnv", weights, flat(values))
    return tf.reshape(outputs, [shape[0], shape[1], shape[2], self.filters])


def build(operator: str, input_shape: Sequence[int]) -> tf_keras.layers.Layer:
  """A built layer of `operator` for `(batch, height, width, channels)` inputs."""
  channels = int(input_shape[-1])
  if operator in REGISTERED:
    layer = registry.find(REGISTERED[operator]).layer(registry.Site(
        keras=tf_keras, filters=channels,
        architecture=spec.Architecture(num_heads=NUM_HEADS), name=operator))
  elif operator == DENSE:
    layer = DenseGlobalAttention(channels, num_heads=NUM_HEADS)
  else:
    raise ValueError(f"`operator` must be one of {OPERATORS}, got {operator!r}.")
  layer.build(tuple(input_shape))
  return layer


def dense_attention_flops(height: int, width: int, channels: int) -> int:
  """FLOPs of `DenseGlobalAttention` on one image, counted as `gsa_keras.flops` does:
  2 per multiply-accumulate, 3 per softmax element (exp, sum, divide)."""
  pixels = height * width
  projection = 2 * pixels * channels * 3 * channels
  logits_and_output = 2 * pixels * pixels * channels * 2
  softmax = 3 * pixels * pixels * NUM_HEADS
  return projection + logits_and_output + softmax


def forward_flops(operator: str, layer, input_shape: Sequence[int]) -> int:
  """FLOPs of one forward call on a batch of `input_shape`."""
  batch, height, width, channels = (int(d) for d in input_shape)
  if operator == DENSE:
    return batch * dense_attention_flops(height, width, channels)
  image_shape = (None, height, width, channels)
  output_shape = tuple(layer.compute_output_shape(image_shape))
  return batch * sum(flops.layer_flops(layer, image_shape, output_shape).values())


def estimated_bytes(operator: str, input_shape: Sequence[int],
                    pass_: str = FORWARD) -> Optional[int]:
  """Roughly the memory the dense attention needs at its peak, to skip sizes that do
  not fit before allocating them; None for the others (their largest tensors grow
  as pixels^1.5, or as pixels for the local attention's gathered neighbourhoods, and
  the scale probes cap their memory instead)."""
  if operator != DENSE:
    return None
  batch, height, width, _ = (int(d) for d in input_shape)
  map_bytes = batch * NUM_HEADS * (height * width) ** 2 * _FLOAT_BYTES
  return _DENSE_PEAK_MAPS[pass_] * map_bytes


def format_bytes(count: float) -> str:
  """'1.5 GB', or '96 MB' below a gigabyte."""
  if count >= 2**30:
    return f"{count / 2**30:.1f} GB"
  return f"{count / 2**20:.0f} MB"


def out_of_memory(needed_bytes: int) -> str:
  """How a case skipped for its estimated memory is reported."""
  return f"out of memory (needs ~{format_bytes(needed_bytes)})"


def step_function(layer, inputs: tf.Tensor, pass_: str,
                  jit_compile: bool) -> Callable[[], object]:
  """A callable running one forward (inference) or forward+backward (training) pass.

  The backward pass takes the gradients of the outputs' sum with respect to the
  inputs and every trainable weight, as inside a network.
  """
  if pass_ == FORWARD:
    def run(x):
      return layer(x, training=False)
  elif pass_ == FORWARD_BACKWARD:
    def run(x):
      with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x, training=True))
      return tape.gradient(loss, [x] + layer.trainable_variables)
  else:
    raise ValueError(f"`pass_` must be one of {PASSES}, got {pass_!r}.")
  compiled = tf.function(run, jit_compile=jit_compile)
  return lambda: compiled(inputs)
