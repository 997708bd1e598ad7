"""Training runs shared by the slow tests, each made once per test session.

A run through `python -m gsa_keras.train` costs a minute or more of start-up, tracing
and steps, so the tests that only read a trained run share these (the session fixtures
`readme_run` and `short_run` in `tests/conftest.py`, each made once across the xdist
workers by `tests/support/once.py`):

- `readme_run`: the README's main command as written there (train the digits default
  for 200 steps, evaluate, export with TFLite, predict the sample digit), in a
  temporary directory instead of /tmp.
- `short_run`: 8 steps of the digits experiment with GSA modules in residual groups
  3-4 only (Table 5), a model unlike the default; several checkpoints, the last at
  step 8.

Tests must not change a shared run; one that damages or continues a run works on
`copy_of(run, tmp_path)`.
"""

import dataclasses
import pathlib
import shutil
import subprocess
import sys
import time

from tests.support import docs_blocks
from tests.support import training

SHORT_RUN_STEPS = 8
SHORT_RUN_CHECKPOINT_INTERVAL = 4
# The short run's settings, also for continuing a copy of it.
SHORT_RUN_OVERRIDES = (
    "task.model.backbone.gsa_resnet.attention_groups=[3, 4],"
    "task.train_data.global_batch_size=16,trainer.steps_per_loop=2,"
    f"trainer.checkpoint_interval={SHORT_RUN_CHECKPOINT_INTERVAL},"
    "trainer.summary_interval=2,trainer.validation_interval=100")


@dataclasses.dataclass(frozen=True)
class Run:
  """A finished command: where it wrote, and what it printed."""
  work_dir: pathlib.Path
  model_dir: pathlib.Path
  data_dir: pathlib.Path
  returncode: int
  stdout: str
  stderr: str
  minutes: float

  def to_json(self) -> dict:
    return {key: str(value) if isinstance(value, pathlib.Path) else value
            for key, value in dataclasses.asdict(self).items()}

  @classmethod
  def from_json(cls, fields: dict) -> "Run":
    return cls(**{field.name: (pathlib.Path(fields[field.name])
                               if field.name.endswith("_dir") else fields[field.name])
                  for field in dataclasses.fields(cls)})

  def check(self) -> "Run":
    """Fails the calling test with the run's error output if the run failed."""
    assert self.returncode == 0, self.stderr[-5000:]
    return self

  @property
  def export_dir(self) -> pathlib.Path:
    """The README run's SavedModel."""
    return self.work_dir / "gsa_digits_export"

  @property
  def tflite_path(self) -> pathlib.Path:
    """The README run's TFLite flatbuffer."""
    return self.work_dir / "gsa_digits.tflite"


def readme_main_command(work_dir) -> str:
  """The README's quick-start command 1 without its set-up part, on `work_dir` paths."""
  command = docs_blocks.quick_start_commands()[0]
  setup, job = command.split(" && ", 2)[:2], command.split(" && ", 2)[2]
  assert setup == ["python3 -m venv .venv", ".venv/bin/pip install -e ."], setup
  job = job.replace("/tmp/", f"{work_dir}/")  # Before the interpreter's path is in.
  return job.replace(".venv/bin/python", sys.executable)


def _finished(command, work_dir, model_dir, data_dir, start, **run_arguments) -> Run:
  result = subprocess.run(command, cwd=training.REPO,
                          env=training.environment(data_dir), capture_output=True,
                          text=True, check=False, **run_arguments)
  return Run(work_dir=work_dir, model_dir=model_dir, data_dir=data_dir,
             returncode=result.returncode, stdout=result.stdout, stderr=result.stderr,
             minutes=(time.time() - start) / 60)


def make_readme_run(work_dir: pathlib.Path) -> Run:
  """Runs the README's main job in `work_dir` (digits written to `work_dir/data`)."""
  start = time.time()
  return _finished(["bash", "-c", readme_main_command(work_dir)], work_dir,
                   work_dir / "gsa_digits", work_dir / "data", start, timeout=1500)


def make_short_run(work_dir: pathlib.Path) -> Run:
  """Trains the short groups-3-4 run in `work_dir/run` (`--mode=train`)."""
  start = time.time()
  model_dir = work_dir / "run"
  command = training.train_command(
      model_dir, f"--params_override={SHORT_RUN_OVERRIDES},"
      f"trainer.train_steps={SHORT_RUN_STEPS}", mode="train")
  return _finished(command, work_dir, model_dir, work_dir / "data", start, timeout=900)


def copy_of(run: Run, directory: pathlib.Path) -> pathlib.Path:
  """A copy of `run`'s model_dir under `directory`, for a test that changes it."""
  target = pathlib.Path(directory) / run.model_dir.name
  shutil.copytree(run.check().model_dir, target)
  # The checkpoint state may name the checkpoints by absolute path: name the copies.
  state = target / "checkpoint"
  state.write_text(state.read_text().replace(str(run.model_dir), str(target)))
  return target
