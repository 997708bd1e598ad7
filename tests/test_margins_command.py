"""`python -m studies.test_margins`: its command line and the SAN fit's shifted digits.

The trainings themselves run in the slow tests that use them (`test_layer_learning.py`,
`test_applications.py`, `test_san_network.py`); here a stand-in check records what the
command passes it.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from studies import test_margins


def _translated(image, dy, dx, background):
  """`image` moved down by `dy` and right by `dx` pixels, uncovered pixels set to
  `background` (per channel): the reference for `_shifted_batches`."""
  height, width, _ = image.shape
  moved = np.empty_like(image)
  moved[...] = background
  for row in range(height):
    for col in range(width):
      source_row, source_col = row - dy, col - dx
      if 0 <= source_row < height and 0 <= source_col < width:
        moved[row, col] = image[source_row, source_col]
  return moved


def test_shifted_batches_translate_each_image_within_max_shift():
  rng = np.random.default_rng(0)
  images = rng.normal(size=(12, 8, 8, 3)).astype("float32")
  labels = np.arange(12)
  batches = test_margins._shifted_batches(tf, images, labels, max_shift=2, batch_size=5,
                                          seed=0)
  seen, shifts = [], set()
  for batch_images, batch_labels in batches:
    for image, label in zip(batch_images.numpy(), batch_labels.numpy()):
      original = images[label]
      background = original.min(axis=(0, 1))
      matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.allclose(image, _translated(original, dy, dx, background),
                                atol=1e-6)]
      assert matches, f"digit {label} is not a translation of at most 2 pixels"
      shifts.add(matches[0])
      seen.append(label)
  assert sorted(seen) == list(labels)  # Every image once per epoch, in batches of 5.
  assert len(shifts) > 3  # The shifts vary.


class _StandIn:
  """Records the recipes a check is called with."""

  def __init__(self):
    self.calls = []

  def __call__(self, seed, **recipe):
    self.calls.append((seed, recipe))
    return {"validation_accuracy": 0.9 + seed / 100, "train_accuracy": 1.0}


def test_recipe_reaches_the_check_and_its_records(tmp_path, monkeypatch):
  stand_in = _StandIn()
  monkeypatch.setitem(test_margins.CHECKS, "san_fit_pairwise", stand_in)
  argv = ["--checks", "san_fit_pairwise", "--seeds", "0-2", "--out", str(tmp_path),
          "--tag", "shift2", "--recipe", '{"max_shift": 2, "jit_compile": true}']
  summary = test_margins.main(argv)
  assert stand_in.calls == [(seed, {"max_shift": 2, "jit_compile": True})
                            for seed in range(3)]
  record = json.loads((tmp_path / "runs" / "san_fit_pairwise-shift2-seed1.json").read_text())
  # The whole recipe, defaults included, so that a record outlives a change of them.
  assert record["recipe"] == {"epochs": test_margins.SAN_FIT_EPOCHS, "jit_compile": True,
                              "label_smoothing": 0.0, "max_shift": 2,
                              "learning_rate": 1e-3}
  assert record["measures"]["validation_accuracy"] == pytest.approx(0.91)
  accuracy = summary["san_fit_pairwise"]["shift2"]["validation_accuracy"]
  assert (accuracy["n"], accuracy["min"], accuracy["max"]) == (3, 0.9, pytest.approx(0.92))
  test_margins.main(argv)  # Resumes: every seed is recorded, nothing runs again.
  assert len(stand_in.calls) == 3


@pytest.mark.parametrize("argv, message", [
    (["--checks", "san_fit_pairwise", "--recipe", '{"max_shif": 2}'],
     "expected a JSON object with keys from epochs, jit_compile"),
    (["--checks", "san_fit_pairwise", "--recipe", "[2]"], "expected a JSON object"),
    (["--checks", "san_fit_pairwise", "--recipe", "{max_shift"], "not JSON"),
    (["--checks", "san_fit_pairwise", "--recipe", '{"max_shift": -1}'],
     "max_shift must be a non-negative int, got -1"),
    (["--checks", "san_fit_pairwise", "--recipe", '{"epochs": 2.5}'],
     "epochs must be a non-negative int, got 2.5"),
    (["--checks", "san_fit_pairwise", "--recipe", '{"jit_compile": 1}'],
     "jit_compile must be a non-negative bool, got 1"),
    (["--checks", "san_fit_pairwise", "--recipe", '{"learning_rate": "1e-3"}'],
     "learning_rate must be a non-negative float, got '1e-3'"),
    (["--checks", "keras_fit", "--recipe", '{"max_shift": 2}'],
     "only the san_fit checks take a recipe"),
])
def test_bad_recipes_fail_before_any_run(argv, message, tmp_path, monkeypatch, capsys):
  stand_in = _StandIn()
  monkeypatch.setitem(test_margins.CHECKS, "san_fit_pairwise", stand_in)
  monkeypatch.setitem(test_margins.CHECKS, "keras_fit", stand_in)
  with pytest.raises(SystemExit):
    test_margins.main(argv + ["--out", str(tmp_path)])
  assert message in capsys.readouterr().err
  assert not stand_in.calls


def test_a_tag_keeps_one_recipe(tmp_path, monkeypatch, capsys):
  stand_in = _StandIn()
  monkeypatch.setitem(test_margins.CHECKS, "san_fit_pairwise", stand_in)
  common = ["--checks", "san_fit_pairwise", "--out", str(tmp_path), "--tag", "mine"]
  test_margins.main(common + ["--seeds", "0", "--recipe", '{"epochs": 3}'])
  with pytest.raises(SystemExit):  # Seed 1 under the same tag, another recipe.
    test_margins.main(common + ["--seeds", "1", "--recipe", '{"epochs": 4}'])
  assert "was measured with the recipe" in capsys.readouterr().err
  test_margins.main(common + ["--seeds", "1", "--recipe", '{"epochs": 3}'])
  assert [recipe for _, recipe in stand_in.calls] == [{"epochs": 3}, {"epochs": 3}]
