"""Exports are all or nothing: written beside the target, moved there when complete.

A failure mid-write (injected: TensorFlow's full-disk error) and a SIGKILL in the middle
of `python -m gsa_keras.export` leave an earlier export at the target as it was, and
no partial one where there was none; the next export clears what a kill left.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from official.vision.serving import export_saved_model_lib

from gsa_keras.serving import export_lib
from tests.support import serving
from tests.support import training

FULL_DISK = "No space left on device"


def _full_disk(path):
  return tf.errors.ResourceExhaustedError(None, None, f"{path}; {FULL_DISK}")


def _tree(directory):
  """{relative path: bytes} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


def _old_export(directory):
  """A stand-in for an earlier export: a `saved_model.pb` and a variables file."""
  (directory / "variables").mkdir(parents=True)
  (directory / "saved_model.pb").write_bytes(b"old saved model")
  (directory / "variables" / "variables.index").write_bytes(b"old index")
  return _tree(directory)


def _beside(target):
  """What lies beside `target` in its directory, other than `target`."""
  return sorted(set(os.listdir(os.path.dirname(target))) - {os.path.basename(target)})


@pytest.mark.parametrize("exchange", [True, False])
def test_a_complete_export_replaces_the_old_one(tmp_path, monkeypatch, exchange):
  """With the one-step exchange (Linux), and with two renames where there is none."""
  if not exchange:
    monkeypatch.setattr(export_lib, "_exchange", lambda first, second: False)
  target = tmp_path / "export"
  _old_export(target)
  with export_lib.staged(str(target)) as path:
    assert os.path.dirname(path) == str(tmp_path)
    assert os.path.basename(path).startswith(".export.tmp-export-")
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
      f.write(b"new")
  assert _tree(target) == {"saved_model.pb": b"new"}
  assert _beside(str(target)) == []


@pytest.mark.parametrize("old", [True, False])
def test_a_failure_mid_write_leaves_the_target_as_it_was(tmp_path, old):
  target = tmp_path / "export"
  before = _old_export(target) if old else None
  with pytest.raises(tf.errors.ResourceExhaustedError):
    with export_lib.staged(str(target)) as path:
      os.makedirs(os.path.join(path, "variables"))
      with open(os.path.join(path, "variables", "variables.data-00000-of-00001"),
                "wb") as f:
        f.write(b"half of the")
        raise _full_disk(f.name)
  assert (_tree(target) == before) if old else not target.exists()
  assert _beside(str(target)) == []


def test_export_saved_model_failing_mid_write(serving_export, tmp_path, monkeypatch):
  """The Model Garden's export writes the variables, then fails (a full disk) before
  `saved_model.pb` and `params.yaml`: the earlier export stays, nothing is left."""
  target = tmp_path / "saved_model"
  before = _old_export(target)
  written = []

  def half_export(export_dir, **kwargs):
    del kwargs
    os.makedirs(os.path.join(export_dir, "variables"))
    data = os.path.join(export_dir, "variables", "variables.data-00000-of-00001")
    with open(data, "wb") as f:
      f.write(b"\0" * 4096)
    written.append(export_dir)
    raise _full_disk(os.path.join(export_dir, "saved_model.pb"))

  monkeypatch.setattr(export_saved_model_lib, "export_inference_graph", half_export)
  with pytest.raises(tf.errors.ResourceExhaustedError, match=FULL_DISK):
    export_lib.export_saved_model(serving_export.params, serving_export.checkpoint,
                                  str(target))
  assert written and os.path.dirname(written[0]) == str(tmp_path)
  assert _tree(target) == before
  assert _beside(str(target)) == []


def test_export_tflite_failing_mid_write(tmp_path, monkeypatch):
  """The flatbuffer's write fails half-way: the earlier flatbuffer stays."""
  target = tmp_path / "model.tflite"
  target.write_bytes(b"old flatbuffer")

  class Converter:  # The conversion itself is tested in test_export.py.
    @staticmethod
    def from_concrete_functions(functions, module):
      del functions, module
      return Converter()

    def convert(self):
      return b"\1" * 10000

  class Module:
    def with_precision(self, precision):
      assert precision == "float32"
      return self

    def tflite_function(self):
      return None

  class HalfWriter:
    def __init__(self, path, mode):
      self.file = open(path, mode)  # noqa: SIM115 closed by __exit__

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.file.close()

    def write(self, data):
      self.file.write(data[:len(data) // 2])
      raise _full_disk(self.file.name)

  monkeypatch.setattr(tf.lite, "TFLiteConverter", Converter)
  monkeypatch.setattr(tf.io.gfile, "GFile", HalfWriter)
  with pytest.raises(tf.errors.ResourceExhaustedError):
    export_lib.export_tflite(Module(), str(target))
  assert target.read_bytes() == b"old flatbuffer"
  assert _beside(str(target)) == []
  monkeypatch.setattr(tf.io.gfile, "GFile", open)
  export_lib.export_tflite(Module(), str(target))
  assert target.read_bytes() == b"\1" * 10000
  assert _beside(str(target)) == []


def test_what_a_killed_export_left_is_cleared_next_time(tmp_path):
  target = tmp_path / "export"
  before = _old_export(target)
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  stale = tmp_path / f".export.tmp-export-{dead}-0123abcd"
  stale.mkdir()
  (stale / "saved_model.pb").write_bytes(b"half")
  running = tmp_path / f".export.tmp-export-{os.getpid()}-4567abcd"  # Still writing.
  running.mkdir()
  other = tmp_path / f".other.tmp-export-{dead}-89abcdef"  # Another target's.
  other.mkdir()
  export_lib.remove_stale_staging(str(target))
  assert not stale.exists() and running.exists() and other.exists()
  assert _tree(target) == before
  # Killed between the two renames (no exchange): the old export is put back.
  target.rename(tmp_path / f".export.old-export-{dead}-0123abcd")
  export_lib.remove_stale_staging(str(target))
  assert _tree(target) == before


def test_targets_an_export_may_not_replace(tmp_path):
  """An export replaces its directory whole: not one that holds anything else."""
  other = tmp_path / "notes"
  other.mkdir()
  (other / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match=r"--export_dir: '.*notes' exists and holds no "
                     r"SavedModel \(no saved_model.pb\)"):
    export_lib.check_target(str(other), "--export_dir", directory=True)
  with pytest.raises(ValueError, match=r"--tflite_path: .* is a directory"):
    export_lib.check_target(str(other), "--tflite_path", directory=False)
  with pytest.raises(ValueError, match=r"--export_dir: .* is a file"):
    export_lib.check_target(str(other / "notes.txt"), "--export_dir", directory=True)
  empty = tmp_path / "empty"
  empty.mkdir()
  export_lib.check_target(str(empty), "--export_dir", directory=True)
  export_lib.check_target(str(tmp_path / "new"), "--export_dir", directory=True)


@pytest.mark.slow
def test_sigkill_during_the_export_leaves_no_partial_export(serving_export, tmp_path):
  """`python -m gsa_keras.export` killed while it writes the SavedModel's variables:
  the earlier export is as it was, and the next export to the target clears the
  killed one's files. (With no earlier export, nothing is at the target: the
  injected failure above shows the same path.)"""
  target = tmp_path / "saved_model"
  before = _old_export(target)
  command = [sys.executable, "-m", "gsa_keras.export",
             f"--experiment={serving.EXPERIMENT}",
             f"--config_file={os.path.join(serving_export.model_dir, 'params.yaml')}",
             f"--checkpoint_path={serving_export.checkpoint}", f"--export_dir={target}"]
  process = subprocess.Popen(
      command, cwd=training.REPO, env=training.environment(tmp_path / "data"),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 600
  staged = None
  while staged is None and process.poll() is None and time.time() < deadline:
    for name in _beside(str(target)):
      if os.path.exists(tmp_path / name / "variables"):
        staged = tmp_path / name
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  _, stderr = process.communicate()
  assert staged is not None, f"no export was being written: {stderr[-3000:]}"
  assert process.returncode == -signal.SIGKILL
  assert _tree(target) == before
  assert [tmp_path / name for name in _beside(str(target))] == [staged]
  export_lib.remove_stale_staging(str(target))
  assert _beside(str(target)) == []

