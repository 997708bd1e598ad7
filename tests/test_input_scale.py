"""How a GSA module's and a GSA block's outputs grow with the scale of their input in
evaluation mode, measured by `studies.input_scale`.

Inputs `x, 2x, 4x` with `x = relu(N(0, 1))`; the growth exponent between two scales
is `log(size ratio) / log(scale ratio)` of the output's root mean square. The
equations predict, with no bias in eq. 3's projection:
- the column attention `(Q P^H) V` (eqs. 2, 7) is bilinear in the queries and
  values: exactly 2;
- the content attention `Q (softmax(K)^T V)` (eqs. 1, 4) normalises the keys only:
  the queries times a convex combination of the values, 2 up to the softmax's
  sharpening;
- the batch norm between the column and the row attention (Appendix B) is affine in
  evaluation mode: it keeps the column output's 2; in training mode it renormalises
  the batch: about 0;
- the row attention `(Q P^W) BN(Y^H)` multiplies the queries with it: 3 in
  evaluation mode, 1 in training mode; so the module (eq. 8) is cubic in evaluation
  mode, and a block that contains it about cubic, where a convolutional block is
  linear.

Bounds: the range of the exponents measured over seeds 0-29 (the comments), widened
on each side by at least the range's own width; the tests use a few of those seeds.
"""

import json

import numpy as np
import pytest

from studies import input_scale

SEEDS = (0, 1)


def _exponents(measurement, part):
  return np.asarray(measurement[part]["exponents"])


@pytest.fixture(scope="module")
def evaluation_terms():
  return [input_scale.measure_layer(seed, "gsa", training=False) for seed in SEEDS]


@pytest.fixture(scope="module")
def training_terms():
  return [input_scale.measure_layer(seed, "gsa", training=True) for seed in SEEDS]


def test_the_terms_add_up_to_the_module_output():
  """The study's split of the module (Appendix B) is the layer's own computation."""
  layer = input_scale.gsa_layer(0, "gsa")
  inputs = input_scale._inputs(input_scale.LAYER_SHAPE, 0)
  for training in (False, True):
    terms = input_scale.layer_terms(layer, inputs, training)
    total = np.reshape(terms["content"] + terms["row"], terms["module"].shape)
    np.testing.assert_allclose(total, terms["module"], rtol=0, atol=1e-5)
  layer = input_scale.gsa_layer(0, "content_column")
  terms = input_scale.layer_terms(layer, inputs, False)
  assert set(terms) == {"content", "column", "module"}
  total = np.reshape(terms["content"] + terms["column"], terms["module"].shape)
  np.testing.assert_allclose(total, terms["module"], rtol=0, atol=1e-5)


def test_growth_exponents():
  assert input_scale.growth_exponents([1.0, 4.0, 32.0], [1.0, 2.0, 4.0]) == [2.0, 3.0]
  assert input_scale.degrees([1.0, 8.0], [2.0, 4.0]) == [3.0]


def test_module_is_cubic_in_evaluation_mode(evaluation_terms):
  for terms in evaluation_terms:
    # Over seeds 0-29: column 2.000 exactly; content 1.99-2.03 (1x->2x), 2.00-2.11
    # (2x->4x); column norm 2.00-2.09; row 3.00-3.09; module 2.97-3.07.
    np.testing.assert_allclose(_exponents(terms, "column"), 2.0, atol=1e-3)
    assert np.all((_exponents(terms, "content") > 1.85) &
                  (_exponents(terms, "content") < 2.3))
    assert np.all((_exponents(terms, "column_norm") > 1.9) &
                  (_exponents(terms, "column_norm") < 2.2))
    assert np.all((_exponents(terms, "row") > 2.9) & (_exponents(terms, "row") < 3.3))
    assert np.all((_exponents(terms, "module") > 2.8) &
                  (_exponents(terms, "module") < 3.3))


def test_column_norm_takes_the_growth_out_in_training_mode_only(training_terms):
  for terms in training_terms:
    # Over seeds 0-29: column norm 0.06-0.14 (1x->2x: its epsilon), 0.004-0.010;
    # row 1.06-1.14, 1.004-1.010; content as in evaluation mode.
    np.testing.assert_allclose(_exponents(terms, "column"), 2.0, atol=1e-3)
    assert np.all(np.abs(_exponents(terms, "column_norm")) < 0.3)
    assert np.all((_exponents(terms, "row") > 0.85) & (_exponents(terms, "row") < 1.35))
    assert np.all((_exponents(terms, "content") > 1.85) &
                  (_exponents(terms, "content") < 2.3))


# Table 4's variants, evaluation mode: (variant, lower, upper bound of the module's
# exponents). Without the row attention after the column one there is no batch norm
# between them, and the module stays quadratic.
VARIANT_BOUNDS = (
    ("content", 1.85, 2.3),  # Over seeds 0-29: 1.99-2.11.
    ("positional", 2.9, 3.3),  # 3.00-3.08.
    ("column", 1.999, 2.001),  # 2.000.
    ("content_column", 1.9, 2.2),  # 1.99-2.04.
)


@pytest.mark.parametrize("variant, lower, upper", VARIANT_BOUNDS)
def test_variants_in_evaluation_mode(variant, lower, upper):
  exponents = _exponents(input_scale.measure_layer(SEEDS[0], variant), "module")
  assert np.all((exponents > lower) & (exponents < upper)), exponents


@pytest.fixture(scope="module")
def blocks():
  return {variant: [input_scale.measure_block(seed, variant) for seed in SEEDS]
          for variant in ("gsa", input_scale.CONVOLUTION)}


def test_gsa_block_is_cubic_where_a_convolutional_block_is_linear(blocks):
  for gsa, conv in zip(blocks["gsa"], blocks[input_scale.CONVOLUTION]):
    # Relative to the module's own input (after the block's first 1x1 conv, BN and
    # ReLU, which do not scale it uniformly), over seeds 0-29: the GSA module
    # 2.83-3.10, the 3x3 convolution 0.94-1.07.
    assert np.all(np.abs(np.asarray(gsa["spatial"]["degrees"]) - 3.0) < 0.5)
    assert np.all(np.abs(np.asarray(conv["spatial"]["degrees"]) - 1.0) < 0.25)
    # From 2x to 4x, over seeds 0-29: residual branch GSA 2.78-3.50, convolution
    # 1.03-1.35; block output GSA 2.63-3.45, convolution 1.02-1.22.
    assert gsa["residual"]["exponents"][-1] > 2.3
    assert conv["residual"]["exponents"][-1] < 1.8
    assert gsa["block"]["exponents"][-1] > 2.2
    assert conv["block"]["exponents"][-1] < 1.7


@pytest.mark.slow
def test_study_quick_mode_writes_json_and_tables(tmp_path):
  from tests.support import training
  model_dir = tmp_path / "run"
  training.write_digits_run(str(model_dir))
  record = input_scale.main([f"--out={tmp_path / 'out'}", "--quick",
                             f"--checkpoint_path={model_dir}",
                             "--experiment=gsa_resnet_digits"])
  written = json.loads((tmp_path / "out" / input_scale.JSON_FILE).read_text())
  safe = input_scale._json_safe(record)
  assert written == json.loads(json.dumps(safe))
  assert written["scales"] == [1.0, 2.0, 4.0]
  assert set(written["block"]) == {"gsa", "content", "positional", "conv"}
  module = written["layer"]["gsa_terms_evaluation"]["module"]["exponents"]
  assert all(2.8 < median < 3.3 for _, median, _ in module)
  (network,) = written["networks"]
  assert network["images"] == 32
  assert [row["block"] for row in network["blocks"]] == [
      "group1_block1", "group2_block1", "group2_block2", "group3_block1",
      "group3_block2", "group3_block3", "group3_block4", "group4_block1"]
  assert len(network["logits"]["max"]) == 3 and len(network["top1"]) == 3
  table = (tmp_path / "out" / input_scale.MARKDOWN_FILE).read_text()
  assert "| row | 3." in table
  assert "| group4_block1 |" in table
