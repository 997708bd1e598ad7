"""Parity of the GSA layers (Keras 3 and tf_keras) with the independent NumPy reference.

The reference (`tests/support/reference.py`) implements the paper's eqs. (1)-(8) and the
Table-2 axial baseline loop by loop in float64. Every test here builds a layer, overwrites
ALL of its weights with random values (including the BatchNormalization moving stats,
gamma and beta, so BN is really exercised), reads them back with `.numpy()`, and
compares the float32 layer output with the float64 reference at rtol = atol = 1e-5.
"""

import itertools

import numpy as np
import pytest

from gsa_keras.layers import keras3
from gsa_keras.layers import tf_keras
from tests.support import reference

FLAVOURS = {"keras3": keras3, "tf_keras": tf_keras}
RTOL = 1e-5
ATOL = 1e-5
# A mutated reference must differ from the layer by far more than the tolerance.
MUTATION_MIN_DIFF = 1e-2
BATCH = 2


# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------


def seed_for(*parts):
  """A deterministic per-test seed (stable across runs and processes)."""
  return sum((i + 1) * ord(ch) for i, ch in enumerate(repr(parts))) % (2**31)


def make_input(rng, h, w, d, batch=BATCH):
  return rng.standard_normal((batch, h, w, d)).astype(np.float32)


def make_layer(flavour, kind, filters, **kwargs):
  module = FLAVOURS[flavour]
  if kind == "gsa":
    return module.GlobalSelfAttention(filters, **kwargs)
  if kind == "axial":
    return module.AxialContentPositionalAttention(filters, **kwargs)
  raise ValueError(kind)


def randomize_weights(layer, rng, kernel_std=0.3, embedding_std=0.4):
  """Overwrite every weight of a built layer with random values (BN included)."""
  layer.kqv_kernel.assign(
      rng.normal(0.0, kernel_std, tuple(layer.kqv_kernel.shape)).astype(np.float32))
  for name in ("column_embeddings", "row_embeddings"):
    var = getattr(layer, name, None)
    if var is not None:
      var.assign(rng.normal(0.0, embedding_std, tuple(var.shape)).astype(np.float32))
  bn = getattr(layer, "column_norm", None)
  if bn is not None:
    f = tuple(bn.gamma.shape)
    bn.gamma.assign(rng.uniform(0.5, 1.5, f).astype(np.float32) *
                    rng.choice([-1.0, 1.0], f).astype(np.float32))
    bn.beta.assign(rng.normal(0.0, 0.5, f).astype(np.float32))
    bn.moving_mean.assign(rng.normal(0.0, 0.5, f).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.3, 2.0, f).astype(np.float32))


def read_weights(layer):
  """The layer's weights as float64 NumPy arrays (read with `.numpy()`)."""
  def get(name):
    var = getattr(layer, name, None)
    return None if var is None else np.asarray(var.numpy(), dtype=np.float64)

  bn_layer = getattr(layer, "column_norm", None)
  bn = None
  if bn_layer is not None:
    bn = {name: np.asarray(getattr(bn_layer, name).numpy(), dtype=np.float64)
          for name in ("gamma", "beta", "moving_mean", "moving_variance")}
    bn["epsilon"] = float(bn_layer.epsilon)
  return {
      "kqv_kernel": get("kqv_kernel"),
      "column_embeddings": get("column_embeddings"),
      "row_embeddings": get("row_embeddings"),
      "bn": bn,
  }


def build_randomize_read(layer, x, rng):
  """Build the layer on x, randomise its weights and return them (float64)."""
  layer(x, training=False)
  randomize_weights(layer, rng)
  return read_weights(layer)


def layer_output(layer, x, training):
  return np.asarray(layer(x, training=training))


def head_dims(d, filters, num_heads, key_channels):
  key_channels = d if key_channels is None else key_channels
  return key_channels // num_heads, filters // num_heads


def reference_output(kind, x, weights, *, num_heads, key_dim, value_dim,
                     max_relative_shift, use_content=True, use_column=True, use_row=True,
                     training=False, column_table=None, row_table=None, **mutations):
  col = weights["column_embeddings"] if column_table is None else column_table
  row = weights["row_embeddings"] if row_table is None else row_table
  x64 = np.asarray(x, dtype=np.float64)
  if kind == "axial":
    return reference.axial_reference(
        x64, weights["kqv_kernel"], col, row, weights["bn"], num_heads=num_heads,
        key_dim=key_dim, value_dim=value_dim, max_relative_shift=max_relative_shift,
        training=training, **mutations)
  return reference.gsa_reference(
      x64, weights["kqv_kernel"], col, row, weights["bn"], num_heads=num_heads,
      key_dim=key_dim, value_dim=value_dim, max_relative_shift=max_relative_shift,
      use_content=use_content, use_column=use_column, use_row=use_row, training=training,
      **mutations)


def check_weight_shapes(layer, kind, d, h, w, filters, num_heads, key_channels,
                        max_relative_shift, use_content=True, use_column=True,
                        use_row=True, spatial_size=None):
  """The documented weight layout (the reference relies on it)."""
  kh, vh = head_dims(d, filters, num_heads, key_channels)
  has_keys = kind == "axial" or use_content
  assert tuple(layer.kqv_kernel.shape) == (d, num_heads, (2 if has_keys else 1) * kh + vh)
  sh, sw = (h, w) if spatial_size is None else spatial_size
  mh = sh - 1 if max_relative_shift is None else max_relative_shift
  mw = sw - 1 if max_relative_shift is None else max_relative_shift
  positional_col = kind == "axial" or use_column
  positional_row = kind == "axial" or use_row
  if positional_col:
    assert tuple(layer.column_embeddings.shape) == (2 * mh + 1, kh)
  if positional_row:
    assert tuple(layer.row_embeddings.shape) == (2 * mw + 1, kh)
  if positional_col and positional_row:
    assert tuple(layer.column_norm.gamma.shape) == (filters,)


def run_parity(flavour, kind, h, w, d, filters, num_heads, key_channels,
               max_relative_shift, use_content=True, use_column=True, use_row=True,
               training=False, spatial_size=None):
  """Build, randomise, run the layer and the reference; return (layer_out, ref_out, ...)."""
  rng = np.random.default_rng(seed_for(flavour, kind, h, w, d, filters, num_heads,
                                       key_channels, max_relative_shift, use_content,
                                       use_column, use_row, training, spatial_size))
  kwargs = dict(num_heads=num_heads, key_channels=key_channels,
                max_relative_shift=max_relative_shift)
  if spatial_size is not None:
    kwargs["spatial_size"] = spatial_size
  if kind == "gsa":
    kwargs.update(use_content=use_content, use_column=use_column, use_row=use_row)
  layer = make_layer(flavour, kind, filters, **kwargs)
  x = make_input(rng, h, w, d)
  weights = build_randomize_read(layer, x, rng)
  check_weight_shapes(layer, kind, d, h, w, filters, num_heads, key_channels,
                      max_relative_shift, use_content, use_column, use_row, spatial_size)
  out = layer_output(layer, x, training)
  assert out.shape == (BATCH, h, w, filters)
  assert out.dtype == np.float32
  kh, vh = head_dims(d, filters, num_heads, key_channels)
  return layer, x, weights, out, dict(num_heads=num_heads, key_dim=kh, value_dim=vh,
                                      max_relative_shift=max_relative_shift)


def assert_matches(out, ref):
  np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)


def assert_differs(out, ref, what):
  diff = float(np.max(np.abs(out - ref)))
  assert diff > MUTATION_MIN_DIFF, (
      f"layer output is within {diff:.3g} of the MUTATED reference ({what}); "
      "the parity test would not detect this mistake")


# ---------------------------------------------------------------------------------
# 1. Parity: shapes x max_relative_shift, full GSA module and axial baseline
# ---------------------------------------------------------------------------------

SHAPES = [(6, 6), (5, 7), (7, 3), (1, 5), (4, 1), (1, 1)]
SHIFTS = [None, 0, 1, 2, 9]  # 9 is larger than every test image


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("kind", ["gsa", "axial"])
@pytest.mark.parametrize("max_relative_shift", SHIFTS, ids=lambda s: f"L={s}")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_parity_shapes_and_shifts(flavour, kind, shape, max_relative_shift):
  """Eqs. (1)-(8) / Table 2 on square, non-square, h=1, w=1 images, L in SHIFTS."""
  h, w = shape
  _, x, weights, out, dims = run_parity(flavour, kind, h, w, d=4, filters=8, num_heads=2,
                                        key_channels=6,
                                        max_relative_shift=max_relative_shift)
  ref = reference_output(kind, x, weights, **dims)
  assert_matches(out, ref)


# ---------------------------------------------------------------------------------
# 1b. Parity: head counts and key_channels (incl. the default key_channels = d)
# ---------------------------------------------------------------------------------

HEAD_CONFIGS = [
    # (d, filters, num_heads, key_channels)
    (4, 4, 1, None),   # single head, key_channels defaults to d
    (6, 8, 2, 4),      # key_channels < d
    (4, 8, 4, 12),     # key_channels > d, 4 heads
    (8, 12, 4, None),  # 4 heads, default key_channels = d = 8 -> kh = 2, vh = 3
]


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("kind", ["gsa", "axial"])
@pytest.mark.parametrize("max_relative_shift", [None, 1], ids=lambda s: f"L={s}")
@pytest.mark.parametrize("config", HEAD_CONFIGS,
                         ids=lambda c: f"d{c[0]}-f{c[1]}-n{c[2]}-kc{c[3]}")
def test_parity_heads_and_key_channels(flavour, kind, config, max_relative_shift):
  d, filters, num_heads, key_channels = config
  _, x, weights, out, dims = run_parity(flavour, kind, 5, 7, d, filters, num_heads,
                                        key_channels, max_relative_shift)
  ref = reference_output(kind, x, weights, **dims)
  assert_matches(out, ref)


# ---------------------------------------------------------------------------------
# 1c. Parity: every ablation combination of use_content / use_column / use_row
# ---------------------------------------------------------------------------------

ABLATIONS = [c for c in itertools.product([True, False], repeat=3) if any(c)]
assert len(ABLATIONS) == 7


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("max_relative_shift", [None, 1], ids=lambda s: f"L={s}")
@pytest.mark.parametrize("shape", [(5, 7), (6, 4)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "switches", ABLATIONS,
    ids=lambda c: "content{:d}-column{:d}-row{:d}".format(*c))
def test_parity_ablation_switches(flavour, switches, shape, max_relative_shift):
  """Y = enabled terms of eq. (8); BN only between column and row when both are on."""
  use_content, use_column, use_row = switches
  h, w = shape
  layer, x, weights, out, dims = run_parity(
      flavour, "gsa", h, w, d=4, filters=8, num_heads=2, key_channels=6,
      max_relative_shift=max_relative_shift, use_content=use_content,
      use_column=use_column, use_row=use_row)
  # The BN between the sub-layers exists only when both column and row are on.
  assert (getattr(layer, "column_norm", None) is not None) == (use_column and use_row)
  ref = reference_output("gsa", x, weights, use_content=use_content,
                         use_column=use_column, use_row=use_row, **dims)
  assert_matches(out, ref)


# ---------------------------------------------------------------------------------
# 1d. training=True: the BN between column and row uses the batch statistics
# ---------------------------------------------------------------------------------

TRAINING_CASES = [
    ("gsa", True, True, True),
    ("gsa", False, True, True),
    ("axial", True, True, True),
]


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("case", TRAINING_CASES,
                         ids=lambda c: "{}-content{:d}-column{:d}-row{:d}".format(*c))
def test_parity_training_uses_batch_statistics(flavour, case):
  kind, use_content, use_column, use_row = case
  _, x, weights, out, dims = run_parity(
      flavour, kind, 6, 5, d=4, filters=8, num_heads=2, key_channels=6,
      max_relative_shift=None, use_content=use_content, use_column=use_column,
      use_row=use_row, training=True)
  ref_train = reference_output(kind, x, weights, use_content=use_content,
                               use_column=use_column, use_row=use_row, training=True,
                               **dims)
  assert_matches(out, ref_train)
  # Discriminating: with random moving stats, inference-mode BN gives another answer.
  ref_infer = reference_output(kind, x, weights, use_content=use_content,
                               use_column=use_column, use_row=use_row, training=False,
                               **dims)
  assert_differs(out, ref_infer, "moving statistics used although training=True")


# ---------------------------------------------------------------------------------
# 2. spatial_size larger than the input: the central part of the table is used
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("kind", ["gsa", "axial"])
@pytest.mark.parametrize("input_shape", [(5, 7), (3, 3), (1, 4)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_spatial_size_larger_than_input_uses_central_table(flavour, kind, input_shape):
  h, w = input_shape
  spatial_size = (9, 11)
  _, x, weights, out, dims = run_parity(flavour, kind, h, w, d=4, filters=8, num_heads=2,
                                        key_channels=6, max_relative_shift=None,
                                        spatial_size=spatial_size)
  assert weights["column_embeddings"].shape[0] == 2 * spatial_size[0] - 1
  assert weights["row_embeddings"].shape[0] == 2 * spatial_size[1] - 1
  # Central part: shifts -(h-1)..(h-1) and -(w-1)..(w-1), given to the reference as the
  # whole (exactly-sized) tables.
  col = reference.central_table(weights["column_embeddings"], h)
  row = reference.central_table(weights["row_embeddings"], w)
  assert col.shape[0] == 2 * h - 1 and row.shape[0] == 2 * w - 1
  ref = reference_output(kind, x, weights, column_table=col, row_table=row, **dims)
  assert_matches(out, ref)
  if h > 1:
    # Discriminating: reading the table from its first rows (i.e. as if it were built
    # for the input size) must not match.
    wrong_col = weights["column_embeddings"][:2 * h - 1]
    wrong = reference_output(kind, x, weights, column_table=wrong_col, row_table=row,
                             **dims)
    assert_differs(out, wrong, "column table indexed from its start, not its centre")


# ---------------------------------------------------------------------------------
# 3. The reference is discriminating: deliberate mutations must NOT match the layer
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_detects_swapped_row_and_column(flavour):
  """Non-square input, distinct tables: swapping axes/tables/shift sign is detected."""
  h, w = 5, 7
  for max_relative_shift in (None, 2):  # with L=2 both tables have 5 rows: swappable
    for use_content in (True, False):
      _, x, weights, out, dims = run_parity(
          flavour, "gsa", h, w, d=4, filters=8, num_heads=2, key_channels=6,
          max_relative_shift=max_relative_shift, use_content=use_content)
      assert not np.allclose(weights["column_embeddings"][:5],
                             weights["row_embeddings"][:5])
      common = dict(use_content=use_content, **dims)
      assert_matches(out, reference_output("gsa", x, weights, **common))
      assert_differs(out, reference_output("gsa", x, weights,
                                           positional_order="row_first", **common),
                     "row attention before column attention")
      assert_differs(out, reference_output("gsa", x, weights, shift_sign=-1, **common),
                     "relative shift x - i instead of i - x")
      if max_relative_shift is not None:
        assert_differs(out, reference_output("gsa", x, weights, swap_tables=True,
                                             **common),
                       "row table used along columns and vice versa")


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize(
    "switches", [(True, True, True), (True, False, False)],
    ids=["full", "content-only"])
def test_detects_wrong_softmax_in_content_attention(flavour, switches):
  """Eq. (1): softmax over pixels per key channel, queries not normalised."""
  use_content, use_column, use_row = switches
  _, x, weights, out, dims = run_parity(
      flavour, "gsa", 6, 5, d=4, filters=8, num_heads=2, key_channels=6,
      max_relative_shift=None, use_content=use_content, use_column=use_column,
      use_row=use_row)
  common = dict(use_content=use_content, use_column=use_column, use_row=use_row, **dims)
  assert_matches(out, reference_output("gsa", x, weights, **common))
  assert_differs(out, reference_output("gsa", x, weights, query_softmax=True, **common),
                 "softmax applied to the queries")
  assert_differs(out, reference_output("gsa", x, weights, key_softmax="channels",
                                       **common),
                 "key softmax over channels instead of pixels")
  assert_differs(out, reference_output("gsa", x, weights, key_softmax="none", **common),
                 "no key softmax")


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_detects_wrong_softmax_in_axial_baseline(flavour):
  """Table-2 baseline: softmax over the attended keys, not over the queries."""
  _, x, weights, out, dims = run_parity(flavour, "axial", 5, 7, d=4, filters=8,
                                        num_heads=2, key_channels=6,
                                        max_relative_shift=2)
  assert_matches(out, reference_output("axial", x, weights, **dims))
  assert_differs(out, reference_output("axial", x, weights, softmax_over="queries",
                                       **dims),
                 "axial softmax over queries")
  # Axial baseline with the two tables exchanged (same size when L=2).
  swapped = reference_output("axial", x, weights,
                             column_table=weights["row_embeddings"],
                             row_table=weights["column_embeddings"], **dims)
  assert_differs(out, swapped, "axial row/column tables swapped")


# ---------------------------------------------------------------------------------
# Normalised queries (`query_normalization`, not in the paper)
# ---------------------------------------------------------------------------------


def _query_normalized_layer(flavour, method, rng, x, **options):
  layer = FLAVOURS[flavour].GlobalSelfAttention(8, num_heads=2, query_normalization=method,
                                                **options)
  weights = build_randomize_read(layer, x, rng)
  scale = None
  if method == "l2":
    layer.query_scale.assign(rng.uniform(0.5, 3.0, (2,)).astype(np.float32))
    scale = np.asarray(layer.query_scale.numpy(), np.float64)
  return layer, weights, scale


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("method", ["softmax", "l2"])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("terms", [(True, True, True), (False, True, True),
                                   (True, False, True)])
def test_gsa_with_normalized_queries_matches_reference(flavour, method, training, terms):
  use_content, use_column, use_row = terms
  rng = np.random.default_rng(seed_for(flavour, method, training, terms))
  x = make_input(rng, 5, 6, 8)
  layer, weights, scale = _query_normalized_layer(
      flavour, method, rng, x, use_content=use_content, use_column=use_column,
      use_row=use_row)
  expected = reference_output(
      "gsa", x, weights, num_heads=2, key_dim=4, value_dim=4, max_relative_shift=None,
      use_content=use_content, use_column=use_column, use_row=use_row,
      training=training, query_normalization=method, query_scale=scale)
  out = layer_output(layer, x, training)
  assert_matches(out, expected)
  # The unnormalised reference is far off: the option changes the computation.
  assert_differs(out, reference_output(
      "gsa", x, weights, num_heads=2, key_dim=4, value_dim=4, max_relative_shift=None,
      use_content=use_content, use_column=use_column, use_row=use_row,
      training=training), "queries not normalised")
