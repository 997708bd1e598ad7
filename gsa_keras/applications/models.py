"""GSA-ResNet classifiers in the way of `keras.applications`, for either Keras.

`build` is the one definition. `gsa_keras.applications.keras3` and
`gsa_keras.applications.tf_keras` bind it to one Keras: each public constructor there
(`GSAResNet50`, ...) is a real function, a one-line wrapper that the `constructor`
decorator gives its signature and docstring, made from Keras's arguments
(`KERAS_ARGUMENTS`) and the options of `gsa_keras.spec.Architecture`, each named with
its doc, so `help()` and `inspect.signature` show every one.

The network is `gsa_keras.network.ResNetBuilder`'s, the same layers under the same
names as the Model Garden backbone, so a model has exactly the parameters of the Model
Garden classifier of the same architecture and loads its training checkpoints
(`weights=<model_dir or checkpoint prefix>`, see `gsa_keras.applications.garden_weights`).
"""

import dataclasses
import inspect
import textwrap
from typing import Any, Callable, Dict, Optional

import numpy as np

from gsa_keras import network
from gsa_keras import spec

# The Model Garden classifiers' input normalisation (`preprocess_ops.MEAN_RGB` and
# `STDDEV_RGB`: ImageNet's mean and standard deviation, on the 0-255 scale).
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
POOLINGS = (None, "avg", "max")
DEFAULT_INPUT_SHAPE = (224, 224, 3)


@dataclasses.dataclass(frozen=True)
class Variant:
  """A public constructor: the depth and width its name fixes, and its title."""
  model_id: int
  width_variant: str
  title: str
  summary: str


VARIANTS = {
    "GSAResNet26": Variant(26, "standard", "GSA-ResNet-26",
                           "Ramachandran et al.'s 26-layer depth (1, 2, 4, 1 blocks) "
                           "with GSA modules (Section 4)."),
    "GSAResNet38": Variant(38, "standard", "GSA-ResNet-38",
                           "2, 3, 5, 2 blocks with GSA modules (Table 6)."),
    "GSAResNet50": Variant(50, "standard", "GSA-ResNet-50",
                           "the paper's main network (Section 4, Table 6)."),
    "GSAResNet101": Variant(101, "standard", "GSA-ResNet-101",
                            "3, 4, 23, 3 blocks with GSA modules (Table 6)."),
    "GSAResNet152": Variant(152, "standard", "GSA-ResNet-152",
                            "3, 8, 36, 3 blocks with GSA modules."),
    "GSAMResNet50": Variant(50, "m_resnet", "GSA-M-ResNet-50",
                            "Table 3's M-ResNet-50 (block channels halved, every "
                            "layer's filters scaled by 1.125) with GSA modules."),
}
# The options a constructor's name fixes.
FIXED_OPTIONS = ("model_id", "width_variant")

# `keras.applications`' arguments: (name, default, doc), in their order.
KERAS_ARGUMENTS = (
    ("include_top", True, "Whether to add the classifier: global average pooling and "
     "a `classes`-way dense layer (the Model Garden's head, without dropout)."),
    ("weights", None, "None (random initialisation), or a training run of "
     "`gsa_keras.train` or of `tpu_scripts` (its model_dir, for the latest checkpoint, "
     "or a checkpoint prefix such as `<model_dir>/ckpt-600`). Backbone options left out "
     "are then the run's, and `input_shape` defaults to the run's input size; a given "
     "option or argument that does not fit the run raises ValueError naming it, and "
     "nothing is loaded."),
    ("input_tensor", None, "Optional Keras tensor (the output of `Input()`) to use as "
     "images."),
    ("input_shape", None, "`(height, width, 3)`; height and width multiples of 32, "
     "default 224x224. `None` height/width (any size) needs `max_relative_shift`, since "
     "global attention sizes its relative embeddings from the feature size."),
    ("pooling", None, "With `include_top=False`: None (the last feature map), 'avg' or "
     "'max'."),
    ("classes", 1000, "Number of classes, with `include_top=True`."),
    ("classifier_activation", "softmax", "Activation of the top layer (None returns "
     "logits)."),
)
_NAME_DOC = "The model's name; default from the network, e.g. 'gsa_resnet50'."
_ARCHITECTURE_DOC = ("A `gsa_keras.spec.Architecture`, every option of the network at "
                     "once; default its defaults. The options below replace its fields.")


def preprocess_input(images):
  """Images with values in [0, 255] -> the models' inputs (as the Model Garden's
  classifiers and the exported SavedModels normalise them): `(x - mean) / stddev` per
  RGB channel, float32. NumPy arrays stay NumPy arrays; tensors stay tensors."""
  if isinstance(images, (np.ndarray, list, tuple, int, float)):
    return ((np.asarray(images, np.float32) - np.float32(MEAN_RGB)) /
            np.float32(STDDEV_RGB))
  import tensorflow as tf
  return (tf.cast(images, tf.float32) - MEAN_RGB) / STDDEV_RGB


# -- Signatures and docstrings, from the arguments and the options. ------------------------


def _signature(variant: Optional[Variant]) -> inspect.Signature:
  """`architecture` (for `from_architecture` only) and Keras's arguments, positional
  or keyword; then by keyword every option but those the variant fixes, and `name`."""
  keyword = inspect.Parameter.KEYWORD_ONLY
  positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
  parameters = []
  if variant is None:
    parameters.append(inspect.Parameter("architecture", positional, default=None,
                                        annotation=Optional[spec.Architecture]))
  parameters += [inspect.Parameter(name, positional, default=default)
                 for name, default, _ in KERAS_ARGUMENTS]
  parameters += [inspect.Parameter(name, keyword, default=spec.default(name),
                                   annotation=spec.OPTION_TYPES[name])
                 for name in spec.OPTION_NAMES
                 if variant is None or name not in FIXED_OPTIONS]
  parameters.append(inspect.Parameter("name", keyword, default=None,
                                      annotation=Optional[str]))
  return inspect.Signature(parameters)


def _docstring(title: str, signature: inspect.Signature) -> str:
  keras_docs = {name: doc for name, _, doc in KERAS_ARGUMENTS}
  entries = []
  for name in signature.parameters:
    if name in spec.OPTION_DOCS:
      entries.append(spec.options_doc((name,)))
      continue
    doc = keras_docs.get(name) or (_ARCHITECTURE_DOC if name == "architecture"
                                   else _NAME_DOC)
    entries.append("\n".join(textwrap.wrap(f"{name}: {doc}", width=88,
                                           initial_indent="    ",
                                           subsequent_indent="      ")))
  return (f"{title}\n\n"
          "  In the way of `keras.applications.ResNet50`, with the network's options by "
          "name\n  (`gsa_keras.spec.Architecture`). Inputs are images normalised by "
          "`preprocess_input`\n  (as the Model Garden's classifiers take them); the "
          "output is class probabilities\n  (`classifier_activation`), or the features "
          "with `include_top=False`.\n\n  Args:\n" + "\n".join(entries) +
          "\n\n  Returns:\n    A functional Keras model.\n  ")


def constructor(function: Callable) -> Callable:
  """Gives a flavour module's wrapper `GSAResNet50` (etc., `VARIANTS`) or
  `from_architecture` its signature and docstring."""
  variant = VARIANTS.get(function.__name__)
  function.__signature__ = _signature(variant)
  if variant is None:
    title = ("A GSA-ResNet of any architecture: `from_architecture(Architecture("
             "model_id=38, attention_groups=(3, 4)), classes=10)`.")
  else:
    title = f"{variant.title}: {variant.summary}"
  function.__doc__ = _docstring(title, function.__signature__)
  return function


# -- The one definition. ----------------------------------------------------------------------


def _check_keras_arguments(model_name, include_top, weights, input_tensor, input_shape,
                           pooling, classes):
  """Raises ValueError naming the argument, before anything is built."""
  if not isinstance(include_top, bool):
    raise ValueError(f"{model_name}: `include_top` must be True or False, got "
                     f"{include_top!r}.")
  if weights is not None and not isinstance(weights, str):
    raise ValueError(
        f"{model_name}: `weights` must be None (random initialisation) or the path of "
        f"a training run of gsa_keras.train or tpu_scripts (its model_dir or a "
        f"checkpoint prefix), got {weights!r}.")
  if weights == "imagenet":
    raise ValueError(
        f"{model_name}: no ImageNet weights are published for GSA-ResNet; pass None, "
        "or the model_dir of your own run (e.g. tpu_scripts/train_imagenet.sh).")
  if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
    raise ValueError(f"{model_name}: `classes` must be a positive integer, got "
                     f"{classes!r}.")
  if pooling not in POOLINGS:
    raise ValueError(f"{model_name}: `pooling` must be one of {list(POOLINGS)}, got "
                     f"{pooling!r}.")
  if input_shape is not None:
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3:
      raise ValueError(f"{model_name}: `input_shape` must be (height, width, 3), got "
                       f"{input_shape!r}.")
  if input_tensor is not None and len(input_tensor.shape) != 4:
    raise ValueError(f"{model_name}: `input_tensor` must have rank 4 (batch, height, "
                     f"width, 3), got shape {tuple(input_tensor.shape)}.")


def model_name(architecture: spec.Architecture) -> str:
  """'gsa_resnet50', 'resnet26' (no attention), 'gsa_m_resnet50', ..."""
  prefix = "gsa_resnet" if architecture.attention_groups else "resnet"
  if architecture.width_variant == "m_resnet":
    prefix = prefix.replace("resnet", "m_resnet")
  return f"{prefix}{architecture.model_id}"


def build(keras_module, constructor_name: str, *args, **kwargs):
  """The model that `constructor_name` (a `VARIANTS` key, or 'from_architecture')
  of `keras_module`'s flavour module makes from its arguments.

  Raises:
    TypeError: an argument the constructor does not take.
    ValueError: a bad argument, named, before anything is built.
  """
  variant = VARIANTS.get(constructor_name)
  arguments = _signature(variant).bind(*args, **kwargs).arguments
  keras_arguments = {name: arguments.get(name, default)
                     for name, default, _ in KERAS_ARGUMENTS}
  options = {name: arguments[name] for name in spec.OPTION_NAMES if name in arguments}
  if variant is not None:
    options.update(model_id=variant.model_id, width_variant=variant.width_variant)
  base = arguments.get("architecture")
  if base is not None:  # Given whole: every option is the caller's.
    options = dict(base.options(), **options)
  architecture = (base or spec.Architecture()).replace(**options)
  name = arguments.get("name")
  _check_keras_arguments(name or model_name(architecture),
                         **{k: v for k, v in keras_arguments.items()
                            if k != "classifier_activation"})
  return _build(keras_module, name, architecture, options, **keras_arguments)


def _build(keras_module, name: Optional[str], architecture: spec.Architecture,
           given: Dict[str, Any], include_top, weights, input_tensor, input_shape,
           pooling, classes, classifier_activation):
  """The model; `given` are the options named by the caller (with `weights`, the
  others are the run's)."""
  run = None
  if weights is not None:
    from gsa_keras.applications import garden_weights
    run = garden_weights.read_run(weights)
    if input_shape is None and input_tensor is None:
      input_shape = run.input_shape
    architecture = garden_weights.fitting_architecture(
        run, name or model_name(architecture), given, include_top, classes,
        input_shape if input_tensor is None else tuple(input_tensor.shape[1:]))
  name = name or model_name(architecture)
  if input_tensor is not None:
    input_shape = tuple(input_tensor.shape[1:])
  elif input_shape is None:
    input_shape = DEFAULT_INPUT_SHAPE
  architecture.validate(input_size=tuple(input_shape)[:2],
                        input_size_argument="input_shape")

  layers = keras_module.layers
  if input_tensor is None:
    inputs = keras_module.Input(shape=tuple(input_shape), name="images")
  else:
    inputs = input_tensor
  builder = network.ResNetBuilder(keras_module, architecture)
  x = builder.endpoints(inputs)[str(spec.NUM_GROUPS + 1)]
  if include_top:
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(classes, activation=classifier_activation,
                     name="predictions")(x)
  elif pooling == "avg":
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
  elif pooling == "max":
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)
  if input_tensor is not None:
    inputs = keras_module.utils.get_source_inputs(input_tensor)
  model = keras_module.Model(inputs, x, name=name)
  if run is not None:
    garden_weights.load_into(model, run)
  return model

