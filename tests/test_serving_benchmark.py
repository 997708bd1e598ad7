"""The serving part of the benchmarks: its figures, its report, its part of the summary
`benchmark_results/README.md`, and a
quick run of exports through `export_lib`.

Timings are never asserted; the figures derived from them (percentiles, images/s,
paired ratios) are recomputed from the recorded samples and calls.
"""

import json
import pathlib
import statistics

import numpy as np
import pytest

from benchmarks import report
from benchmarks import run
from benchmarks import serving
from benchmarks import timing
from tests.support import benchmark_results

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _timing(p50, rounds=5):
  """A made-up Timing of one call per round around `p50`."""
  samples = tuple(p50 * (1 + 0.01 * (i - rounds // 2)) for i in range(rounds))
  return timing.Timing(samples, 1, samples)


def _synthetic_serving(bfloat16_flags=True):
  """Serving results shaped like a full run's, with made-up times (ms): GSA-ResNet-50
  fastest in bfloat16 at batch 8 and on TFLite at batch 1."""
  p50_ms = {  # (export, batch) -> GSA, groups 2-4, ResNet-50.
      (serving.SAVED_MODEL_FLOAT32, 1): (60.0, 50.0, 40.0),
      (serving.SAVED_MODEL_FLOAT32, 8): (420.0, 330.0, 250.0),
      (serving.SAVED_MODEL_BFLOAT16, 1): (45.0, 40.0, 30.0),
      (serving.SAVED_MODEL_BFLOAT16, 8): (250.0, 210.0, 150.0),
      (serving.TFLITE_FLOAT32, 1): (40.0, 35.0, 35.0),
  }
  settings = serving.Settings()
  timings = {}
  for network, export, batch in serving.configurations(settings):
    index = serving.NETWORKS.index(network)
    timings[serving.config_name(network, export, batch)] = _timing(
        p50_ms[export, batch][index] / 1e3)
  rows = []
  ratio = serving._ratio
  for network, export, batch in serving.configurations(settings):
    name = serving.config_name(network, export, batch)
    measured = timings[name]
    rows.append({
        "network": network, "export": export, "batch": batch,
        "timing": measured.to_json(), "p50": measured.percentile(50),
        "p99": measured.percentile(99),
        "images_per_second": batch / measured.percentile(50),
        "ratio_to_baseline": ratio(
            timings, name, serving.config_name(serving.BASELINE, export, batch)),
        "ratio_to_saved_model_float32": ratio(
            timings, name,
            serving.config_name(network, serving.SAVED_MODEL_FLOAT32, batch))})
  return {
      "model_id": 50, "input_size": 224, "num_classes": 1000,
      "networks": {"gsa_resnet": "GSA-ResNet-50",
                   "gsa_resnet_groups234": "GSA-ResNet-50, groups 2-4",
                   "resnet": "ResNet-50"},
      "baseline": "resnet", "experiment": serving.EXPERIMENT,
      "cpu_bfloat16": {flag: bfloat16_flags for flag in serving.BFLOAT16_FLAGS},
      "tflite_threads": 2, "tflite_delegate": "XNNPACK (the interpreter's default)",
      "export_seconds": {}, "timed_seconds": 1.0, "repeats": 5, "rows": rows}


def check_serving_figures(result: dict, repeats: int) -> None:
  """Every row's figures follow from its recorded calls and rounds."""
  rows = {(r["network"], r["export"], r["batch"]): r for r in result["rows"]}
  for (network, export, batch), row in rows.items():
    recorded = row["timing"]
    latencies = recorded["latencies"]
    assert len(recorded["samples"]) == repeats
    assert len(latencies) == repeats * recorded["calls"] >= repeats
    assert row["p50"] == pytest.approx(np.percentile(latencies, 50), rel=1e-12)
    assert row["p99"] == pytest.approx(np.percentile(latencies, 99), rel=1e-12)
    assert 0 < row["p50"] <= row["p99"] <= max(latencies)
    assert row["images_per_second"] == pytest.approx(batch / row["p50"])
    for key, other in (("ratio_to_baseline", (result["baseline"], export, batch)),
                       ("ratio_to_saved_model_float32",
                        (network, serving.SAVED_MODEL_FLOAT32, batch))):
      if other == (network, export, batch):
        assert row[key] is None
      else:
        expected = statistics.median(
            a / b for a, b in zip(recorded["samples"], rows[other]["timing"]["samples"]))
        assert row[key] == pytest.approx(expected, rel=1e-12)


def test_synthetic_figures_are_consistent():
  check_serving_figures(_synthetic_serving(), repeats=5)


def test_configurations_cover_every_export_and_batch():
  settings = serving.Settings()
  configs = serving.configurations(settings)
  assert len(configs) == 3 * (2 * 2 + 1)
  assert {(e, b) for _, e, b in configs} == {
      (serving.SAVED_MODEL_FLOAT32, 1), (serving.SAVED_MODEL_FLOAT32, 8),
      (serving.SAVED_MODEL_BFLOAT16, 1), (serving.SAVED_MODEL_BFLOAT16, 8),
      (serving.TFLITE_FLOAT32, 1)}
  assert serving.BASELINE in settings.networks
  assert settings.repeats >= 30


def test_experiment_params_are_the_networks():
  settings = serving.Settings()
  for network in serving.NETWORKS:
    model = serving.experiment_params(network, settings).task.model
    assert model.num_classes == 1000 and list(model.input_size) == [224, 224, 3]
  gsa = serving.experiment_params("gsa_resnet_groups234", settings).task.model.backbone
  assert gsa.type == "gsa_resnet" and list(gsa.gsa_resnet.attention_groups) == [2, 3, 4]
  resnet = serving.experiment_params("resnet", settings).task.model.backbone
  assert resnet.type == "resnet" and resnet.resnet.model_id == 50


def test_cpu_bfloat16_support_reads_the_flags(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n\n"
                     "processor\t: 1\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n")
  assert serving.cpu_bfloat16_support(str(cpuinfo)) == {"avx512_bf16": False,
                                                         "amx_bf16": True}
  assert serving.cpu_bfloat16_support(str(tmp_path / "none")) == {
      "avx512_bf16": False, "amx_bf16": False}


def test_report_serving_table_and_recommendation(tmp_path):
  results = benchmark_results.synthetic()
  results["serving"] = _synthetic_serving()
  report.write(results, tmp_path)
  markdown = (tmp_path / report.REPORT_MD).read_text()
  section = markdown.split("## Serving")[1]
  assert ("| export | batch | network | p50 ms | p99 ms | images/s | time / ResNet-50 | "
          "time / float32 SavedModel |") in section
  assert ("| SavedModel bfloat16 | 8 | GSA-ResNet-50 | 250.00 | 254.90 | 32.0 | 1.67 | "
          "0.60 |") in section
  assert ("| SavedModel float32 | 8 | ResNet-50 | 250.00 | 254.90 | 32.0 | - | - |"
          in section)
  assert "| TFLite float32 | 1 | ResNet-50 | 35.00 | 35.69 | 28.6 | - | 0.88 |" in section
  assert ("- Batch 1: GSA-ResNet-50: **TFLite float32**, p50 40.00 ms, 25.0 images/s "
          "(SavedModel float32 60.00 ms, SavedModel bfloat16 45.00 ms)") in section
  assert ("; ResNet-50: **SavedModel bfloat16**, p50 30.00 ms, 33.3 images/s") in section
  assert ("- Batch 8: GSA-ResNet-50: **SavedModel bfloat16**, p50 250.00 ms, 32.0 "
          "images/s (SavedModel float32 420.00 ms)") in section
  assert "which has bfloat16 instructions (avx512_bf16, amx_bf16)" in section
  assert (tmp_path / "serving.png").stat().st_size > 0
  without = _synthetic_serving(bfloat16_flags=False)
  assert "has no bfloat16 instructions (none of avx512_bf16, amx_bf16)" in (
      report.serving_recommendation(without))


def test_summary_has_the_serving_part_only_with_serving_results():
  results = benchmark_results.synthetic()
  assert "## Serving" not in report.summary(results)
  results["serving"] = _synthetic_serving()
  summary = report.summary(results)
  block = summary.split("## Serving\n\n", 1)[1]
  assert block.startswith(f"Command: `{results['command']}`. Machine: ")
  assert block == report.serving_summary(results) + "\n"
  assert report.serving_table(results["serving"]) in block
  assert report.serving_recommendation(results["serving"]) in block
  # The targets come first, as without serving results.
  assert summary.index(report.targets_summary(results)) < summary.index("## Serving")


def test_committed_serving_summary_is_the_committed_results():
  """The serving part of `benchmark_results/README.md` is written from
  `benchmark_results/results.json`, or absent while that run has no serving part."""
  results = json.loads((ROOT / "benchmark_results" / report.RESULTS_JSON).read_text())
  committed = (ROOT / "benchmark_results" / report.SUMMARY_MD).read_text()
  if "serving" in results:
    assert "\n## Serving\n\n" + report.serving_summary(results) + "\n" in committed, (
        "run python -m benchmarks.report benchmark_results")
  else:
    assert "## Serving" not in committed


def test_provenance_of_parts_from_two_runs(tmp_path):
  """A serving run into a directory with an earlier run keeps its parts, and each part
  says which command measured it."""
  earlier = benchmark_results.synthetic()
  earlier["quick"] = True
  (tmp_path / report.RESULTS_JSON).write_text(json.dumps(earlier))
  kept = run.earlier_results(tmp_path, True, ["serving"])
  assert set(kept) == {"network_level", "module_level", "scale", "parts"}
  assert kept["parts"]["scale"] == {"command": earlier["command"],
                                    "machine": earlier["machine"]}
  assert run.earlier_results(tmp_path, False, ["serving"]) == {}
  assert set(run.earlier_results(tmp_path, True, ["network", "module", "scale"])) == set()
  later = {"command": "python -m benchmarks --parts serving",
           "machine": dict(earlier["machine"], date="later")}
  results = {**later, "quick": True, **kept, "serving": _synthetic_serving()}
  results["parts"]["serving"] = later
  summary = report.targets_summary(results)
  assert summary.startswith(f"Command: `{earlier['command']}`. Machine: ")
  assert "--parts serving" not in summary
  serving_block = report.serving_summary(results)
  assert serving_block.startswith("Command: `python -m benchmarks --parts serving`")
  both = report.runs_line(results, ["network_level", "serving"])
  assert both.startswith(f"Network level: Command: `{earlier['command']}`")
  assert "\n\nServing: Command: `python -m benchmarks --parts serving`" in both


@pytest.mark.slow
def test_quick_serving_part_runs_end_to_end(tmp_path, capsys):
  """`python -m benchmarks --quick --parts serving` into a directory with an earlier
  quick run: the exports are timed, the earlier parts kept, the report written."""
  earlier = benchmark_results.synthetic()
  earlier["quick"] = True
  (tmp_path / report.RESULTS_JSON).write_text(json.dumps(earlier))
  results = run.main(["--quick", "--parts", "serving", "--out", str(tmp_path)])
  written = sorted(pathlib.Path(p).name for p in capsys.readouterr().out.split())
  assert written == ["README.md", "module_level.png", "network_level.png",
                     "results.md", "scale.png", "serving.png"]
  saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
  assert saved["network_level"] == earlier["network_level"]
  assert saved["parts"]["serving"]["command"] == (
      f"python -m benchmarks --quick --parts serving --out {tmp_path}")
  result = saved["serving"]
  settings = run.settings(True, 2**30)["serving"]
  assert result["rows"] == results["serving"]["rows"]
  assert [(r["network"], r["export"], r["batch"]) for r in result["rows"]] == (
      serving.configurations(settings))
  assert len(result["rows"]) == len(settings.networks) * (2 * 2 + 1)
  assert set(result["cpu_bfloat16"]) == set(serving.BFLOAT16_FLAGS)
  assert set(result["export_seconds"]) == set(settings.networks)
  check_serving_figures(result, settings.repeats)
  markdown = (tmp_path / report.REPORT_MD).read_text()
  assert "## Serving" in markdown and "- Batch 2: " in markdown
  assert "Serving: Command: `python -m benchmarks --quick --parts serving" in markdown
