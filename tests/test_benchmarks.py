"""The benchmark suite: its helpers, its memory probe, its report and a quick run.

Timings are never asserted: they depend on the machine and its load. The committed
summary `benchmark_results/README.md` (which the docs link to) is checked against
`benchmark_results/results.json`.
"""

import json
import math
import pathlib
import time

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import network_level
from benchmarks import operators
from benchmarks import report
from benchmarks import run
from benchmarks import scale
from benchmarks import timing
from gsa_keras import flops
from gsa_keras import paper
from tests.support import benchmark_results

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- Timing. ---------------------------------------------------------------------------


def test_time_side_by_side_interleaves_and_counts_calls():
  calls = []
  functions = {name: (lambda name=name: calls.append(name)) for name in "abc"}
  timings = timing.time_side_by_side(functions, warmup=2, repeats=4,
                                     min_sample_seconds=0.0)
  assert set(timings) == set("abc")
  for name, measured in timings.items():
    assert len(measured.samples) == 4 and measured.calls == 1
    assert calls.count(name) == 2 + 1 + 4  # Warm-up, calibration, rounds.
  rounds = calls[-12:]
  # Every round times each function once, in an order rotated by one per round.
  assert [rounds[i:i + 3] for i in range(0, 12, 3)] == [
      list("abc"), list("bca"), list("cab"), list("abc")]


def test_record_calls_keeps_every_call_and_its_percentiles():
  durations = iter([0.004, 0.001, 0.002, 0.003] * 20)
  functions = {"sleepy": lambda: time.sleep(next(durations))}
  measured = timing.time_side_by_side(functions, warmup=1, repeats=3,
                                      min_sample_seconds=0.0, record_calls=True)
  assert measured["sleepy"].calls == 1 and len(measured["sleepy"].latencies) == 3
  # One call per sample: the samples are the calls (and the timer's next reading).
  for latency, sample in zip(measured["sleepy"].latencies, measured["sleepy"].samples):
    assert latency <= sample < latency + 5e-4
  made_up = timing.Timing((1.0,), 1, latencies=(5.0, 1.0, 3.0, 2.0, 4.0))
  for percent in (0, 50, 90, 99, 100):
    assert made_up.percentile(percent) == pytest.approx(
        np.percentile([5.0, 1.0, 3.0, 2.0, 4.0], percent))
  assert made_up.to_json()["latencies"] == [5.0, 1.0, 3.0, 2.0, 4.0]
  with pytest.raises(ValueError, match="record_calls"):
    timing.Timing((1.0,), 1).percentile(50)
  assert "latencies" not in timing.Timing((1.0,), 1).to_json()


def test_paired_ratio_is_the_median_of_per_round_ratios():
  a = timing.Timing((2.0, 4.0, 9.0), calls=1)
  b = timing.Timing((1.0, 1.0, 3.0), calls=1)
  assert timing.paired_ratio(a, b) == 3.0
  assert a.median == 4.0


# -- Growth exponents and memory. ------------------------------------------------------


@pytest.mark.parametrize("power", [1.0, 1.5, 2.0])
def test_fit_exponent_recovers_power_laws(power):
  pixels = [32**2, 64**2, 128**2, 256**2]
  assert scale.fit_exponent(pixels, [3e-6 * p**power for p in pixels]) == (
      pytest.approx(power))


def test_fit_exponent_quadratic_and_linear():
  pixels = np.array([100.0, 400.0, 1600.0])
  assert scale.fit_exponent(pixels, 7 * pixels**2) == pytest.approx(2.0)
  assert scale.fit_exponent(pixels, 0.5 * pixels) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="at least 2"):
    scale.fit_exponent([100.0], [1.0])


def test_memory_probe_in_a_fresh_process_reports_a_sane_number():
  """The dense attention at 48x48 holds (8 heads, 2304, 2304) float32 maps: the
  probe must see at least one of them (170 MB) and not absurdly more."""
  size, channels = 48, 16
  one_map = operators.NUM_HEADS * (size * size)**2 * 4
  answer = scale.run_probe(dict(operator=operators.DENSE, size=size, channels=channels,
                                batch=1, warmup=1, repeats=1,
                                memory_budget_bytes=2 * 2**30), timeout_seconds=300)
  assert answer["status"] == "ok", answer
  assert answer["seconds"] > 0
  assert one_map <= answer["added_bytes"] <= 6 * one_map
  assert answer["added_bytes"] <= operators.estimated_bytes(
      operators.DENSE, (1, size, size, channels))


@pytest.mark.slow  # TensorFlow's allocator waits ~20 s for memory before it fails.
def test_memory_probe_reports_out_of_memory_past_its_budget():
  answer = scale.run_probe(dict(operator=operators.DENSE, size=48, channels=16,
                                batch=1, warmup=0, repeats=1,
                                memory_budget_bytes=32 * 2**20), timeout_seconds=300)
  assert answer["status"].startswith("out of memory"), answer


def test_scale_estimates_dense_memory_instead_of_running_it(monkeypatch):
  probed = []

  def fake_probe(spec, timeout_seconds):
    del timeout_seconds
    probed.append((spec["operator"], spec["size"]))
    return {"status": "ok", "seconds": 1e-6 * spec["size"]**3,
            "added_bytes": spec["size"]**3}

  monkeypatch.setattr(scale, "run_probe", fake_probe)
  settings = scale.Settings(sizes=(16, 32, 64, 128), channels=16,
                            memory_budget_bytes=100 * 2**20, fit_from=0)
  results = scale.run(settings, log=lambda message: None)
  # (8 heads, 64^2, 64^2) float32 maps are 512 MB: 64 is over the budget, 128 not run.
  assert probed == [("gsa", 16), ("gsa", 32), ("gsa", 64), ("gsa", 128),
                    ("local_attention", 16), ("local_attention", 32),
                    ("local_attention", 64), ("local_attention", 128),
                    ("dense_attention", 16), ("dense_attention", 32)]
  dense = results[operators.DENSE]["points"]
  assert dense[2]["status"] == "out of memory (needs ~1.0 GB)"
  assert dense[3]["status"].startswith("not run")
  assert results[operators.GSA]["exponents"]["time"] == pytest.approx(1.5)
  assert results[operators.GSA]["exponents"]["memory"] == pytest.approx(1.5)
  assert results[operators.DENSE]["exponents"]["fit_sizes"] == [16, 32]


# -- Costs. ----------------------------------------------------------------------------


def test_operator_flops_reuse_the_project_counter():
  shape = (2, 8, 8, 16)
  for name in (operators.GSA, operators.CONV):
    layer = operators.build(name, (None,) + shape[1:])
    per_image = sum(flops.layer_flops(layer, (None, 8, 8, 16), (None, 8, 8, 16)).values())
    assert operators.forward_flops(name, layer, shape) == 2 * per_image
  conv = operators.build(operators.CONV, (None, 8, 8, 16))
  assert operators.forward_flops(operators.CONV, conv, shape) == 2 * 2 * 64 * 9 * 16 * 16


def test_dense_attention_matches_a_reference_and_its_flop_count():
  shape = (1, 4, 3, 16)
  layer = operators.build(operators.DENSE, (None,) + shape[1:])
  inputs = tf.random.normal(shape)
  kernel = layer.kqv_kernel.numpy()  # (16, 8 heads, 2 + 2 + 2)
  flat = inputs.numpy().reshape(12, 16)
  kqv = np.einsum("pd,dnc->pnc", flat, kernel)
  keys, queries, values = kqv[..., :2], kqv[..., 2:4], kqv[..., 4:]
  logits = np.einsum("pnk,qnk->npq", queries, keys) / math.sqrt(2)
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  expected = np.einsum("npq,qnv->pnv", weights, values).reshape(shape)
  np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-4, atol=1e-5)
  # Projection, Q K^T and weights x V (2 FLOPs per multiply-accumulate), softmax.
  assert operators.dense_attention_flops(4, 3, 16) == (
      2 * 12 * 16 * 48 + 2 * 2 * 12 * 12 * 16 + 3 * 12 * 12 * 8)


# -- Report. ---------------------------------------------------------------------------


def test_report_checks_the_targets(tmp_path):
  paths = report.write(benchmark_results.synthetic(), tmp_path)
  markdown = (tmp_path / report.REPORT_MD).read_text()
  targets = markdown.split("## Targets")[1].split("##")[0]
  lines = {line.split(" | ")[0].strip("| "): line for line in targets.splitlines()
           if line.startswith("| ")}
  inference = lines["GSA-ResNet-50 / ResNet-50 inference time, batch 8, graph"]
  assert "< 1.40 (paper)" in inference and inference.endswith("| **no** |")
  assert lines["GSA / Conv2D 3x3 forward time, 56x56x64"].endswith("| yes |")
  assert lines["GSA / Conv2D 3x3 forward time, 7x7x512"].endswith("| **no** |")
  assert "| 0.25 GB | yes |" in lines["one GSA module at 256x256x64: added memory"]
  assert "| 1678 ms | **no** |" in lines["one GSA module at 256x256x64: time"]
  assert lines["GSA time growth exponent in pixels"].endswith("| 1.50 | yes |")
  assert "out of memory (needs ~9.0 GB)" in markdown
  assert "out of memory (needs ~17.2 GB)" in markdown
  for path in paths:
    assert path.stat().st_size > 0
  for png in tmp_path.glob("*.png"):
    assert tf.io.decode_png(tf.io.read_file(str(png))).shape[-1] in (3, 4)


def test_committed_summary_is_the_committed_results():
  """`benchmark_results/README.md` is what the report writes from the committed
  `results.json`, and `results.md` has the same targets table."""
  results = json.loads((ROOT / "benchmark_results" / report.RESULTS_JSON).read_text())
  committed = (ROOT / "benchmark_results" / report.SUMMARY_MD).read_text()
  assert report.summary(results) == committed, (
      "benchmark_results/README.md differs from benchmark_results/results.json: "
      "run python -m benchmarks.report benchmark_results")
  exponent = results["scale"][operators.GSA]["exponents"]["time"]
  assert (f"| GSA time growth exponent in pixels | <= 1.5 | {exponent:.2f} | "
          f"{'yes' if exponent <= 1.5 else '**no**'} |") in committed
  # The command that measured the targets' parts (a later run may have added others).
  assert report.provenance(results, "network_level")["command"] in committed
  # The report's own Markdown has the same targets table.
  assert report.targets_section(results) in (
      ROOT / "benchmark_results" / report.REPORT_MD).read_text()


def test_summary_is_written_beside_the_report(tmp_path):
  """`report.write` writes the summary too: title, note, targets; no serving part
  without serving results."""
  results = benchmark_results.synthetic()
  paths = report.write(results, tmp_path)
  assert tmp_path / report.SUMMARY_MD in paths
  text = (tmp_path / report.SUMMARY_MD).read_text()
  assert text == report.summary(results)
  assert text.startswith(f"# GSA benchmark results\n\n{report.GENERATED_NOTE}\n")
  assert f"## Targets\n\n{report.targets_summary(results)}\n" in text
  assert text.endswith("| 1.50 | yes |\n")
  assert "## Serving" not in text


@pytest.mark.slow
def test_quick_suite_runs_end_to_end(tmp_path, capsys):
  """Every part but serving (`tests/test_serving_benchmark.py` runs that one)."""
  results = run.main(["--quick", "--parts", "network,module,scale", "--out",
                      str(tmp_path)])
  written = capsys.readouterr().out.split()
  assert sorted(pathlib.Path(p).name for p in written) == [
      "README.md", "module_level.png", "network_level.png", "results.md", "scale.png"]
  saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
  assert set(saved) >= {"machine", "network_level", "module_level", "scale"}
  assert saved["scale"][operators.GSA]["exponents"]["time"] is not None
  assert len(results["module_level"]) == 2 * 2 * 2  # Batches, modes, passes.
  # SAN (Table 3's other baseline) beside the others, module and network (SAN10 with
  # its footprints narrowed to the 32x32 input), and the networks' peak memory.
  for row in results["module_level"]:
    assert set(row["operators"]) == set(operators.OPERATORS)
    for name in (operators.SAN_PAIRWISE, operators.SAN_PATCHWISE):
      assert row["operators"][name]["timing"]["median"] > 0
      assert row["ratios"][f"{operators.GSA}/{name}"] > 0
  network = results["network_level"]
  assert network["costs"][network_level.SAN_PATCHWISE]["name"] == "SAN10-patchwise"
  assert network["costs"][network_level.SAN_PAIRWISE]["flops"] > 0
  assert f"{network_level.SAN_PAIRWISE}/{network_level.GSA}" in network["rows"][0]["ratios"]
  memory = network["memory"]
  assert set(memory) == {network_level.GSA, network_level.SAN_PATCHWISE}
  for by_step in memory.values():
    assert by_step[network_level.INFERENCE]["status"] == "ok"
    assert by_step[network_level.INFERENCE]["added_bytes"] > 2**20
  markdown = (tmp_path / report.REPORT_MD).read_text()
  for title in ("## Targets", "## Network level", "## Module level", "## Scale",
                "Peak memory", "SAN10-patchwise", "SAN pairwise 7x7"):
    assert title in markdown
  for png in tmp_path.glob("*.png"):
    image = tf.io.decode_png(tf.io.read_file(str(png)))
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_report_shows_local_attention_and_groups_234_ratios(tmp_path):
  """The local-attention and groups 2-4 rows reach the targets table, with the paper's
  TPUv3 ratio beside the measured one (131.9 / 31.7 ms for local vs GSA)."""
  results = benchmark_results.synthetic()
  network = results["network_level"]
  names = network_level.network_names(50)
  for key in (network_level.LOCAL, network_level.GSA_GROUPS_234):
    network["costs"][key] = dict(network["costs"][network_level.GSA], name=names[key],
                                 label=names[key],
                                 paper_runtime_ms=paper.network(names[key]).runtime_ms)
  for row in network["rows"]:
    row["timings"] = {k: benchmark_results.timing_json(0.1) for k in network["costs"]}
    row["ratios"] = {"local_resnet/gsa_resnet": 3.5, "gsa_resnet_groups234/gsa_resnet": 0.8,
                     "gsa_resnet_groups234/resnet": 1.1, "local_resnet/resnet": 4.0}
  for row in results["module_level"]:
    row["operators"][operators.LOCAL] = row["operators"][operators.CONV]
    row["ratios"]["gsa/local_attention"] = 0.25
  report.write(results, tmp_path)
  markdown = (tmp_path / report.REPORT_MD).read_text()
  targets = markdown.split("## Targets")[1].split("##")[0]
  assert ("| Local-ResNet-50 / GSA-ResNet-50 inference time, batch 8, graph | reported "
          "(paper, TPUv3: 4.16) | 3.50 | - |") in targets
  assert ("| GSA-ResNet-50, groups 2-4 / ResNet-50 inference time, batch 8, graph | "
          "reported (paper, TPUv3: 1.26) | 1.10 | - |") in targets
  assert ("| GSA / local attention 7x7 forward time, 56x56x64 | reported | graph b1 0.25, "
          "graph b8 0.25, xla b1 0.25, xla b8 0.25 | - |") in targets
  assert "local attention 7x7 ms" in markdown
  assert "Local-ResNet-50 / GSA-ResNet-50 |" in markdown
