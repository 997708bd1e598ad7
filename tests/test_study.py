"""The Fashion-MNIST study runner: its plan, report, --quick mode and resume.

The quick study trains every arm for 4 steps of batch 8 on 96 images per IDX set that
the test writes, each run in its own `python -m gsa_keras.train` process.
"""

import json
import pathlib
import subprocess
import sys

import pytest

from studies import fashion_mnist as study
from studies import report
from tests.support import idx_files

REPO = pathlib.Path(__file__).resolve().parents[1]
QUICK_STEPS = 4


# -- Plan, arguments and report (no training). -----------------------------------------


def test_every_arm_has_its_yaml():
  assert [arm.name for arm in study.ARMS] == [
      "conv", "gsa", "positional", "content", "content_column", "content_row",
      "axial", "local", "san_patchwise", "san_pairwise", "groups234", "groups34",
      "gsa_query_l2", "gsa_query_softmax"]
  for arm in study.ARMS:
    assert arm.config_file.is_file(), arm.config_file
  assert ({arm.config_file for arm in study.ARMS} ==
          set((REPO / "official_configs" / "fashion_mnist").glob("*.yaml")))


def test_plan_runs_table6_arms_with_more_seeds_seed_by_seed():
  runs = [(arm.name, seed) for arm, seed in study.plan(
      ["conv", "gsa", "content"], seeds=3, ablation_seeds=1)]
  assert runs == [("conv", 0), ("gsa", 0), ("content", 0),
                  ("conv", 1), ("gsa", 1), ("conv", 2), ("gsa", 2)]
  full = study.plan([arm.name for arm in study.ARMS], seeds=3, ablation_seeds=1)
  assert len(full) == 18  # 3 seeds of conv and gsa, 1 of each of the 12 other arms.


def test_bad_arguments_fail_naming_the_flag(capsys):
  with pytest.raises(SystemExit):
    study.parse_args(["--arms", "conv,resnet50"])
  assert "--arms: unknown arm(s) ['resnet50']" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    study.parse_args(["--steps", "0"])
  assert "--steps: must be a positive integer, got 0" in capsys.readouterr().err
  assert study.parse_args(["--arms", "gsa,conv"]).arms == ["conv", "gsa"]


def _record(arm, seed, top1, seconds):
  curve = [{"step": 10, "epoch": 0.5, "top1": top1 - 0.1, "loss": 1.0},
           {"step": 20, "epoch": 1.0, "top1": top1, "loss": 0.5}]
  return {"arm": arm, "seed": seed, "label": arm.upper(), "table": "Table 6",
          "params": 1_000_000, "flops": 2_000_000, "top1": top1, "top5": 1.0,
          "epochs": 1.0, "validation_top1": top1, "validation_loss": 0.5,
          "test_loss": 0.4, "max_abs_logit": 10.0 + seed, "share_above_100": 0.0,
          "curve": curve, "train_wall_seconds": seconds, "images_per_second": 100.0,
          "eval_wall_seconds": 5.0, "load_average_start": 1.0,
          "load_average_end": 2.0, "resumed_from_steps": [], "segments": []}


def test_report_means_stds_claims_and_plots(tmp_path):
  records = [_record("gsa", 0, 0.90, 60), _record("gsa", 1, 0.92, 120),
             _record("conv", 0, 0.89, 30)]
  summary = report.summarize(records, order=["conv", "gsa"])
  assert list(summary) == ["conv", "gsa"]
  assert summary["gsa"]["top1"]["mean"] == pytest.approx(0.91)
  assert summary["gsa"]["top1"]["std"] == pytest.approx(0.0141421, rel=1e-4)
  assert summary["conv"]["top1"]["std"] is None  # One seed: no spread.
  (claim,) = report.claims(summary)  # Only Table 6 has both of its arms.
  assert claim["measured"] == pytest.approx(2.0)
  # conv's one seed counts with gsa's seed std (1.414): sqrt(1.414**2 / 2 + 1.414**2).
  assert claim["standard_error"] == pytest.approx(1.7320508, rel=1e-6)
  assert claim["verdict"] == "within noise"
  results = {"machine": report.machine(1.5), "runs": records, "arms": summary,
             "claims": report.claims(summary)}
  paths = report.write(results, tmp_path)
  text = (tmp_path / report.REPORT_MD).read_text()
  # Test and validation top-1, validation loss, largest |logit| (mean of 10 and 11),
  # parameters, FLOPs, images/s and minutes per epoch (55,000 / 100 / 60).
  assert ("| GSA (`gsa`) | Table 6 | 2 | 91.00 ± 1.41 | 91.00 ± 1.41 | 0.500 ± 0.000 "
          "| 10.5 | 1.000 | 2.0 | 100 ± 0 | 9.2 |") in text
  assert "| Table 6: GSA beats convolution | `gsa` - `conv` |" in text
  assert ("| 91.00 ± 1.41 (2) | 89.00 (1) | +2.00 ± 1.73 | within noise | 0.5 / 0.5 "
          "| 10.5 / 10 |") in text
  for name in list(report.PLOTS) + [report.CURVES_PNG]:
    assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
  assert len(paths) == 3 + len(report.PLOTS)


@pytest.mark.parametrize("measured,standard_error,expected", [
    (2.1, 1.0, "holds"), (1.9, 1.0, "within noise"), (-1.9, 1.0, "within noise"),
    (-2.1, 1.0, "does not hold"), (5.0, None, "unknown (one seed per arm)")])
def test_verdict_is_two_standard_errors(measured, standard_error, expected):
  assert report.verdict(measured, standard_error) == expected


def test_pooled_seed_std_weighs_arms_by_their_degrees_of_freedom():
  summary = {"a": {"top1": {"n": 3, "std": 0.02}}, "b": {"top1": {"n": 2, "std": 0.05}},
             "c": {"top1": {"n": 1, "std": None}}}
  assert report.seed_std(summary) == pytest.approx(((2 * 4e-4 + 25e-4) / 3) ** 0.5)
  assert report.seed_std({"c": summary["c"]}) is None


def test_the_committed_report_is_written_from_the_committed_runs():
  """study_results/fashion_mnist/results.md is what `studies.report` writes from its
  results.json, at the experiment's schedule, with every claim whose arms have run."""
  from gsa_keras.configs import fashion_mnist as fm_config
  out = REPO / "study_results" / "fashion_mnist"
  if not (out / report.RESULTS_JSON).exists():
    pytest.skip("the study has no finished run committed yet")
  results = json.loads((out / report.RESULTS_JSON).read_text())
  assert (out / report.REPORT_MD).read_text() == report.markdown(results), (
      "results.md differs from results.json: run python -m studies.report "
      "study_results/fashion_mnist")
  assert results["settings"]["steps"] == fm_config.TRAIN_STEPS
  assert not results["settings"]["max_examples"]
  assert [c["claim"] for c in results["claims"]] == [
      claim for claim, a, b, _ in report.CLAIMS
      if a in results["arms"] and b in results["arms"]]
  for record in results["runs"]:
    assert len(record["curve"]) >= 10 and record["test_images"] == 10_000


# -- The quick study, end to end. ------------------------------------------------------


def _study(out, source, *flags):
  command = [sys.executable, "-m", "studies.fashion_mnist", "--quick",
             f"--out={out}", f"--source={source}", *flags]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          timeout=1800, check=False)
  assert result.returncode == 0, result.stderr[-5000:]
  return json.loads((out / report.RESULTS_JSON).read_text()), result.stderr


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
  source = tmp_path_factory.mktemp("idx")
  idx_files.write_idx_set(source, train_count=120, test_count=100)
  out = tmp_path_factory.mktemp("study")
  results, log = _study(out, source, "--seeds=1", f"--arms={','.join(QUICK_ARMS)}")
  return out, source, results, log


# Two arms (a process each, ~40 s apiece on 2 idle cores) keep the suite's time in
# budget: convolution and GSA. Every arm's YAML is loaded and validated by
# test_every_arm_has_its_yaml and test_experiments.
QUICK_ARMS = ("conv", "gsa")


@pytest.mark.slow
def test_quick_study_measures_its_arms(quick_study):
  out, _, results, _ = quick_study
  assert set(results["arms"]) == set(QUICK_ARMS)
  statuses = [s["status"] for s in results["statuses"]]
  assert statuses == ["finished"] * len(QUICK_ARMS)
  assert results["settings"]["steps"] == QUICK_STEPS
  for record in results["runs"]:
    assert record["steps"] == QUICK_STEPS and record["quick"]
    assert record["test_images"] == 96  # The first 96 of the 100 test images.
    assert 0.0 <= record["top1"] <= 1.0
    assert record["params"] > 1e5 and record["flops"] > 1e6
    assert record["train_wall_seconds"] > 0 and record["eval_wall_seconds"] > 0
    assert record["images_per_second"] > 0
    assert record["load_average_start"] >= 0 and record["load_average_end"] >= 0
    assert record["segments"][0]["start_step"] == 0
    assert record["segments"][-1]["end_step"] == QUICK_STEPS
    # Validated twice (--quick) on the validation split, then tested once.
    assert [point["step"] for point in record["curve"]] == [2, 4]
    assert record["validation_loss"] == record["curve"][-1]["loss"] > 0
    assert record["test"]["images"] == 96 and record["test"]["non_finite"] == 0
    assert 0 < record["max_abs_logit"] == record["test"]["max_abs_logit"]["max"]
  params = {name: arm["params"] for name, arm in results["arms"].items()}
  flops = {name: arm["flops"] for name, arm in results["arms"].items()}
  # The paper's Table 6 shape: GSA has fewer parameters and FLOPs than convolution.
  assert params["gsa"] < params["conv"]
  assert flops["gsa"] < flops["conv"]
  assert list(results["arms"]) == [arm.name for arm in study.ARMS
                                   if arm.name in QUICK_ARMS]
  text = (out / report.REPORT_MD).read_text()
  for name in QUICK_ARMS:
    assert f"(`{name}`)" in text
  for name in list(report.PLOTS) + [report.CURVES_PNG, report.BATCHES_PNG]:
    assert (out / name).read_bytes()[:4] == b"\x89PNG"
  assert (out / ".gitignore").read_text().startswith("model_dirs/")


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_resumes_an_interrupted_one(quick_study):
  out, source, _, _ = quick_study
  finished = (out / "runs" / "conv-seed0.json").read_text()
  # A second seed of the conv arm is interrupted at step 2 (checkpointed)...
  results, log = _study(out, source, "--arms=conv", "--seeds=2", "--pause_at_step=2")
  assert [(s["arm"], s["seed"], s["status"]) for s in results["statuses"]] == [
      ("conv", 0, "skipped"), ("conv", 1, "paused")]
  assert results["statuses"][1]["step"] == 2
  assert "conv-seed0: finished before, skipped" in log
  assert not (out / "runs" / "conv-seed1.json").exists()
  # ...and a rerun continues it from that checkpoint, skipping the finished run.
  results, log = _study(out, source, "--arms=conv", "--seeds=2")
  assert [(s["arm"], s["seed"], s["status"]) for s in results["statuses"]] == [
      ("conv", 0, "skipped"), ("conv", 1, "finished")]
  assert "conv-seed1: training steps 2 -> 4 (resumed from the checkpoint at step 2)" in (
      log)
  assert (out / "runs" / "conv-seed0.json").read_text() == finished
  record = json.loads((out / "runs" / "conv-seed1.json").read_text())
  assert record["resumed_from_steps"] == [2]
  assert [(s["start_step"], s["end_step"]) for s in record["segments"]] == [
      (0, 2), (2, 4)]
  train_log = (out / "model_dirs" / "conv-seed1" / "train_and_eval.log").read_text()
  assert "train | step:      2 | training until step 4..." in train_log
  assert results["arms"]["conv"]["top1"]["n"] == 2
  assert results["arms"]["conv"]["top1"]["std"] is not None
