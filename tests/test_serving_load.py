"""Serving under concurrent load: 8 threads, valid and bad requests mixed.

The digits classifier of tests/test_export.py, exported once (`serving_export`), is
called from 8 threads for 12 s: every valid answer must equal the single-threaded one,
every bad request must get its own error, and resident memory must come back.
"""

import gc
import json

import pytest
import tensorflow as tf

from benchmarks import serving_load

THREADS = 8
SECONDS = 12.0


@pytest.fixture(scope="module")
def model(serving_export):
  return tf.saved_model.load(serving_export.export_dir)


def test_eight_threads_get_the_single_threaded_answers_and_clear_errors(model):
  mix = serving_load.requests()
  assert sum(request.error is not None for request in mix) == 4
  expected = serving_load.reference_answers(model, mix)
  serving_load.run_load(model, mix, expected, THREADS, 1.0)  # Warm-up.
  gc.collect()
  rss_before = serving_load.resident_mb()
  result = serving_load.run_load(model, mix, expected, THREADS, SECONDS)
  gc.collect()
  rss_after = serving_load.resident_mb()
  summary = result.summary()
  print(json.dumps(summary, indent=1), f"RSS {rss_before:.0f} -> {rss_after:.0f} MB")
  assert result.unexpected == [] and result.mismatches == []
  assert summary["max_abs_difference"] <= serving_load.ATOL
  # Each thread went round the mix at least once: every request was made, bad too.
  assert result.requests >= len(mix)
  assert result.rejected >= 4 and result.valid >= len(mix) - 4
  assert SECONDS <= result.seconds < SECONDS + 30
  assert rss_after - rss_before < 150, (rss_before, rss_after)


def test_bad_requests_get_their_messages(model):
  for request in serving_load.requests():
    if request.error is None:
      continue
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
      model.signatures[request.signature](inputs=request.make_inputs())
    assert request.error in error.value.message, request.name


def test_benchmark_command_quick(serving_export, tmp_path):
  results = serving_load.main(["--saved_model", serving_export.export_dir,
                               "--quick", "--out", str(tmp_path)])
  saved = json.loads((tmp_path / serving_load.RESULTS_JSON).read_text())
  assert saved["quick"] and [row["threads"] for row in saved["results"]] == [1, 8]
  for row in saved["results"]:
    assert row["requests"] > 0 and row["mismatches"] == 0
    assert row["unexpected_errors"] == 0 and row["rejected_as_expected"] > 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
  assert len(saved["load_average_start"]) == 3
  report = (tmp_path / serving_load.REPORT_MD).read_text()
  assert "| threads | requests | requests/s |" in report
  assert "| 8 |" in report and "Load average" in report
  assert results["results"] == saved["results"]
