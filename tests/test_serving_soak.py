"""The serving soak (`benchmarks/serving_load.py --soak_seconds`), in a short mode:
3 intervals of 2 s, 4 clients, on the shared digits export. The committed run is 10
minutes of 1-minute intervals (see the module's docstring)."""

import json

import pytest

from benchmarks import serving_load

INVALID = ["wrong_shape", "corrupt_bytes", "oversize_header", "empty_batch"]


def test_short_soak(serving_export, tmp_path):
  results = serving_load.main([
      "--saved_model", serving_export.export_dir, "--out", str(tmp_path),
      "--soak_seconds", "6", "--soak_interval", "2", "--threads", "4"])
  saved = json.loads((tmp_path / serving_load.SOAK_JSON).read_text())
  assert saved["invalid_kinds"] == INVALID and saved["clients"] == 4
  intervals = saved["intervals"]
  assert [row["interval"] for row in intervals] == [0, 1, 2]
  for row in intervals:
    assert row["valid"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"], row
    assert row["failures"] == {}, row
    assert 0 < row["rss_mb"] <= row["rss_max_mb"], row
  refused = {kind: sum(row["refused"].get(kind, 0) for row in intervals)
             for kind in INVALID}
  assert all(refused.values()), refused
  checks = saved["checks"]
  assert set(checks) == {"no_failures", "invalid_refused", "memory_flat",
                         "latency_stable"}
  assert checks["no_failures"]["ok"] and checks["invalid_refused"]["ok"]
  # Memory and latency over 2 s intervals are noise: computed, not judged here.
  assert "MB in interval 2" in checks["memory_flat"]["detail"]
  report = (tmp_path / serving_load.SOAK_MD).read_text()
  assert "| interval (2 s) | valid | p50 ms | p99 ms | wrong_shape refused |" in report
  assert "| no_failures | pass | none |" in report
  assert results["intervals"] == intervals


def _interval(index, rss, p99, failures=None, refused=None):
  return {"interval": index, "rss_mb": rss, "p99_ms": p99, "failures": failures or {},
          "refused": refused if refused is not None else {k: 3 for k in INVALID}}


def test_soak_verdicts():
  steady = [_interval(0, 900, 80), _interval(1, 1000, 100), _interval(2, 1040, 140)]
  checks = serving_load.soak_checks(steady, INVALID)
  assert all(check["ok"] for check in checks.values()), checks
  grown = [_interval(0, 900, 80), _interval(1, 1000, 100), _interval(2, 1060, 160)]
  checks = serving_load.soak_checks(grown, INVALID)
  assert not checks["memory_flat"]["ok"] and not checks["latency_stable"]["ok"]
  assert checks["memory_flat"]["detail"] == (
      "1000 MB in interval 2, 1060 MB in the last (+6.0%; limit 5%)")
  failing = [_interval(0, 900, 80), _interval(1, 1000, 100, refused={}),
             _interval(2, 1000, 100, failures={"valid request failed: png": 2})]
  checks = serving_load.soak_checks(failing, INVALID + ["never_sent"])
  assert checks["no_failures"] == {"ok": False,
                                   "detail": "valid request failed: png x2"}
  assert not checks["invalid_refused"]["ok"]
  assert "never_sent x0" in checks["invalid_refused"]["detail"]


def test_soak_needs_three_intervals(serving_export, tmp_path):
  with pytest.raises(SystemExit):
    serving_load.main(["--saved_model", serving_export.export_dir, "--out",
                       str(tmp_path), "--soak_seconds", "100"])
