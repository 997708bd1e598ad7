"""`studies.evaluation.logit_statistics`: accuracy, loss and logit sizes of a run."""

import math

import numpy as np
import pytest

from studies import evaluation


def test_statistics_of_known_logits():
  logits = np.array([[2.0, 0.0, 0.0],     # right, |logit| 2
                     [0.0, 150.0, 0.0],   # wrong (label 0), |logit| 150
                     [0.0, 0.0, -20.0],   # right by the tie's first index, 20
                     [np.nan, 1.0, 0.0]])  # not finite
  labels = np.array([0, 0, 0, 1])
  stats = evaluation.logit_statistics(logits[:3], labels[:3])
  assert stats["images"] == 3 and stats["top1"] == pytest.approx(2 / 3)
  expected_loss = np.mean([
      -(2 - math.log(math.exp(2) + 2)),
      150 + math.log(1 + 2 * math.exp(-150)),
      -(0 - math.log(2 + math.exp(-20)))])
  assert stats["loss"] == pytest.approx(expected_loss, rel=1e-9)
  assert stats["max_abs_logit"]["max"] == 150.0
  assert stats["max_abs_logit"]["median"] == 20.0
  assert stats["share_above_10"] == pytest.approx(2 / 3)
  assert stats["share_above_100"] == pytest.approx(1 / 3)
  assert stats["share_above_10000"] == 0.0
  assert stats["non_finite"] == 0
  assert evaluation.logit_statistics(logits, labels)["non_finite"] == 1


def test_label_smoothing_is_the_tasks_loss():
  logits = np.array([[1.0, 0.0]])
  smoothed = evaluation.logit_statistics(logits, np.array([0]), label_smoothing=0.1)
  log_p = [1 - math.log(math.e + 1), -math.log(math.e + 1)]
  assert smoothed["loss_with_smoothing"] == pytest.approx(-(0.95 * log_p[0] +
                                                            0.05 * log_p[1]))
  assert smoothed["loss"] == pytest.approx(-log_p[0])
