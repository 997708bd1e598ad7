"""A Model Garden training run's weights, into a model of `gsa_keras.applications`.

A run of `gsa_keras.train` (or of `tpu_scripts`) leaves checkpoints and the
`params.yaml` describing its model in its model_dir. The run's config is read first and
gives the network (its `spec.Architecture`); the options and arguments the caller gave
are compared with it, so a run of another depth, variant, class count or input size
fails with a message naming what differs, before anything is built. The run's classifier
is then built with the Model Garden (tf_keras) and
restored by `gsa_keras.runs`, and its weights are copied layer by layer: both networks
come from `gsa_keras.network.ResNetBuilder`, so their layers have the same names. Every
weight is matched and checked before the first one is assigned: nothing is partly
loaded.
"""

import dataclasses
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from official.core import config_definitions as cfg
from official.vision.configs import image_classification as ic_config

from gsa_keras import runs
from gsa_keras import spec

WEIGHTS_ARGUMENT = "`weights`"
# Any registered classification experiment: the run's params.yaml overrides every field.
_BASE_EXPERIMENT = "gsa_resnet_digits"
_HEAD_LAYER = "predictions"  # The Keras models' name for the Model Garden's Dense head.


@dataclasses.dataclass(frozen=True)
class Run:
  """A training run: where it is, its checkpoint prefix and its experiment config."""
  path: str
  checkpoint: str
  params: cfg.ExperimentConfig

  @property
  def input_shape(self) -> Tuple[int, ...]:
    return tuple(self.params.task.model.input_size)

  @property
  def architecture(self) -> spec.Architecture:
    """The run's network: its backbone and `norm_activation` configs."""
    model = self.params.task.model
    return model.backbone.gsa_resnet.architecture(model.norm_activation)


def read_run(path: str) -> Run:
  """The run at `path` (a model_dir or a checkpoint prefix), its config checked.

  Raises:
    FileNotFoundError: No checkpoint, or no `params.yaml` beside it.
    ValueError: The run's model is not a GSA-ResNet classifier.
  """
  checkpoint = runs.find_checkpoint(path, WEIGHTS_ARGUMENT)
  config_files = runs.run_config_files(path)
  if not config_files:
    raise FileNotFoundError(
        f"{WEIGHTS_ARGUMENT}: no {runs.RUN_PARAMS_FILE} in "
        f"{runs.run_directory(path)!r}, so the run's model is unknown; pass the "
        "model_dir of a gsa_keras.train or tpu_scripts run (or a checkpoint in it).")
  params = runs.load_params(_BASE_EXPERIMENT, config_files,
                            task_type=ic_config.ImageClassificationTask)
  backbone_type = params.task.model.backbone.type
  if backbone_type != "gsa_resnet":
    raise ValueError(f"{WEIGHTS_ARGUMENT}: the run at {path!r} trained a "
                     f"{backbone_type!r} backbone, not 'gsa_resnet'.")
  return Run(path=path, checkpoint=checkpoint, params=params)


def fitting_architecture(run: Run, model_name: str, given: Mapping[str, Any],
                         include_top: bool, classes: int,
                         input_shape: Sequence[int]) -> spec.Architecture:
  """The run's architecture with the training-only options of `given` (the options
  the caller named; `spec.TRAINING_ONLY_OPTIONS`); raises ValueError naming every
  other option and argument in which the caller's network differs from the run's."""
  model = run.params.task.model
  architecture = run.architecture
  differences = []
  for field in spec.OPTION_NAMES:
    if field in spec.TRAINING_ONLY_OPTIONS:
      continue
    if field in given and given[field] != getattr(architecture, field):
      value, theirs = given[field], getattr(architecture, field)
      if isinstance(value, (list, tuple)):
        value, theirs = tuple(value), tuple(theirs)
        if value == theirs:
          continue
      differences.append(f"`{field}`={value!r} where the run has {theirs!r}")
  if include_top and classes != model.num_classes:
    differences.append(f"`classes`={classes} where the run has {model.num_classes}")
  if include_top and model.add_head_batch_norm:
    differences.append("the run's head has a batch norm (`add_head_batch_norm`), "
                       "which these models do not")
  if architecture.needs_input_size and tuple(input_shape)[:2] != run.input_shape[:2]:
    differences.append(
        f"`input_shape`={tuple(input_shape)} where the run has {run.input_shape} "
        "(global attention sizes its relative embeddings by the input)")
  if differences:
    raise ValueError(f"{model_name}: {WEIGHTS_ARGUMENT} {run.path!r} holds another "
                     f"network: {'; '.join(differences)}. Nothing was loaded.")
  return architecture.replace(**{name: value for name, value in given.items()
                                 if name in spec.TRAINING_ONLY_OPTIONS})


def _weight_name(weight) -> str:
  """A weight's name within its layer ('kernel', 'gamma', 'kqv_kernel', ...)."""
  return weight.name.split("/")[-1].split(":")[0]


def _garden_weights(garden_model) -> Dict[Tuple[str, str], np.ndarray]:
  """{(layer name, weight name): value} of a restored Model Garden classifier."""
  values = {}
  for layer in garden_model.backbone.layers:
    for weight in layer.weights:
      values[(layer.name, _weight_name(weight))] = weight.numpy()
  heads = [layer for layer in garden_model.layers
           if type(layer).__name__ == "Dense"]
  for layer in heads[-1:]:
    for weight in layer.weights:
      values[(_HEAD_LAYER, _weight_name(weight))] = weight.numpy()
  return values


def load_into(model, run: Run) -> None:
  """Copies the run's latest weights into `model`, all or none.

  Raises:
    ValueError: A weight of `model` has no counterpart of the same shape in the run.
  """
  garden = _garden_weights(runs.load_model(run.params, run.checkpoint,
                                           WEIGHTS_ARGUMENT))
  assignments, problems = [], []
  for layer in model.layers:
    for weight in layer.weights:
      key = (layer.name, _weight_name(weight))
      value = garden.get(key)
      if value is None:
        problems.append(f"{'/'.join(key)} is not in the run")
      elif tuple(value.shape) != tuple(weight.shape):
        problems.append(f"{'/'.join(key)} has shape {tuple(weight.shape)}, the run's "
                        f"{tuple(value.shape)}")
      else:
        assignments.append((weight, value))
  if problems:
    raise ValueError(f"{model.name}: {WEIGHTS_ARGUMENT} {run.path!r} does not fit: "
                     f"{'; '.join(problems[:5])}"
                     f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}"
                     ". Nothing was loaded.")
  for weight, value in assignments:
    weight.assign(value)
