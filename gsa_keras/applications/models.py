"""GSA-ResNet classifiers in the way of `keras.applications`, for either Keras.

`gsa_keras.applications.keras3` and `gsa_keras.applications.tf_keras` bind the
constructors below to one Keras. The network is `gsa_keras.network.ResNetBuilder`'s,
the same layers under the same names as the Model Garden backbone, so a model has
exactly the parameters of the Model Garden classifier of the same config and loads its
training checkpoints (`weights=<model_dir or checkpoint prefix>`, see
`gsa_keras.applications.garden_weights`).
"""

from typing import Optional, Sequence

import numpy as np

from gsa_keras import network
from gsa_keras import spec

# The Model Garden classifiers' input normalisation (`preprocess_ops.MEAN_RGB` and
# `STDDEV_RGB`: ImageNet's mean and standard deviation, on the 0-255 scale).
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
POOLINGS = (None, "avg", "max")
# Batch normalisation of the Keras models: the registered experiments' `norm_activation`
# (the TPU ResNet recipe's). Momentum 0.9 also lets the moving statistics follow the
# data within a few dozen steps, so a short `fit` evaluates sensibly.
NORM_MOMENTUM = 0.9
NORM_EPSILON = 1e-5

# name -> (model_id, width_variant) of each constructor.
VARIANTS = {
    "GSAResNet26": (26, "standard"),
    "GSAResNet38": (38, "standard"),
    "GSAResNet50": (50, "standard"),
    "GSAResNet101": (101, "standard"),
    "GSAResNet152": (152, "standard"),
    "GSAMResNet50": (50, "m_resnet"),
}


def preprocess_input(images):
  """Images with values in [0, 255] -> the models' inputs (as the Model Garden's
  classifiers and the exported SavedModels normalise them): `(x - mean) / stddev` per
  RGB channel, float32. NumPy arrays stay NumPy arrays; tensors stay tensors."""
  if isinstance(images, (np.ndarray, list, tuple, int, float)):
    return ((np.asarray(images, np.float32) - np.float32(MEAN_RGB)) /
            np.float32(STDDEV_RGB))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (tf.cast(images, tf.float32) - MEAN_RGB) / STDDEV_RGB


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


def gsa_resnet(keras_module, model_id: int, width_variant: str = spec.DEFAULT_WIDTH_VARIANT, *,
               include_top: bool = True, weights: Optional[str] = None,
               input_tensor=None, input_shape=None, pooling: Optional[str] = None,
               classes: int = 1000, classifier_activation="softmax",
               attention_groups: Sequence[int] = spec.RESIDUAL_GROUPS,
               attention_variant: str = spec.DEFAULT_ATTENTION_VARIANT, num_heads: int = spec.DEFAULT_NUM_HEADS,
               max_relative_shift: Optional[int] = None, stem_type: str = spec.DEFAULT_STEM_TYPE,
               zero_init_residual: bool = spec.DEFAULT_ZERO_INIT_RESIDUAL, norm_momentum: float = NORM_MOMENTUM,
               norm_epsilon: Optional[float] = None, name: Optional[str] = None):
  """A GSA-ResNet classifier (or feature extractor) of `keras_module`.

  `model_id` and `width_variant` choose the network (`spec.BLOCK_REPEATS`,
  `spec.WIDTH_VARIANTS`); the other arguments are the constructors' (`GSAResNet50`
  etc.), documented there.
  """
  name = name or _model_name(model_id, width_variant, attention_groups)
  _check_keras_arguments(name, include_top, weights, input_tensor, input_shape, pooling,
                         classes)
  backbone = dict(model_id=model_id, width_variant=width_variant,
                  attention_groups=tuple(attention_groups),
                  attention_variant=attention_variant, num_heads=num_heads,
                  max_relative_shift=max_relative_shift, stem_type=stem_type)
  run = None
  if weights is not None:
    from gsa_keras.applications import garden_weights  # pylint: disable=g-import-not-at-top
    run = garden_weights.read_run(weights)
    if input_shape is None and input_tensor is None:
      input_shape = run.input_shape
    if norm_epsilon is None:
      norm_epsilon = run.norm_epsilon
    garden_weights.check_fits(run, name, backbone, include_top, classes, input_shape,
                              norm_epsilon)
  if norm_epsilon is None:
    norm_epsilon = NORM_EPSILON
  if input_tensor is not None:
    input_shape = tuple(input_tensor.shape[1:])
  elif input_shape is None:
    input_shape = (224, 224, 3)
  spec.check_arguments(**backbone, input_size=tuple(input_shape)[:2],
                       input_size_argument="input_shape")

  layers = keras_module.layers
  if input_tensor is None:
    inputs = keras_module.Input(shape=tuple(input_shape), name="images")
  else:
    inputs = input_tensor
  builder = network.ResNetBuilder(
      keras_module, **backbone, zero_init_residual=zero_init_residual,
      norm_momentum=norm_momentum, norm_epsilon=norm_epsilon)
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


def _model_name(model_id, width_variant, attention_groups):
  prefix = "resnet" if not tuple(attention_groups) else "gsa_resnet"
  if width_variant == "m_resnet":
    prefix = prefix.replace("resnet", "m_resnet")
  return f"{prefix}{model_id}"


_CONSTRUCTOR_DOC = """{}: {}

  In the way of `keras.applications.ResNet50`, with the backbone's own options. Inputs
  are images normalised by `preprocess_input` (as the Model Garden's classifiers take
  them); the output is class probabilities (`classifier_activation`), or the features
  with `include_top=False`.

  Args:
    include_top: whether to add the classifier: global average pooling and a
      `classes`-way dense layer (the Model Garden's head, without dropout).
    weights: None (random initialisation), or a training run of `gsa_keras.train` or
      of `tpu_scripts` (its model_dir, for the latest checkpoint, or a checkpoint
      prefix such as `<model_dir>/ckpt-600`). The run's `params.yaml` must describe
      this network; a mismatch raises ValueError naming the argument, and nothing is
      loaded. `input_shape` then defaults to the run's input size.
    input_tensor: optional Keras tensor (the output of `Input()`) to use as images.
    input_shape: `(height, width, 3)`; height and width multiples of 32, default
      224x224. `None` height/width (any size) needs `max_relative_shift`, since global
      attention sizes its relative embeddings from the feature size.
    pooling: with `include_top=False`: None (the last feature map), 'avg' or 'max'.
    classes: number of classes, with `include_top=True`.
    classifier_activation: activation of the top layer (None returns logits).
    attention_groups: residual groups (1..4) whose 3x3 convolutions are attention
      modules (Table 5); `()` gives the convolutional ResNet of the same depth.
    attention_variant: 'gsa', a Table 4 ablation, Table 2's 'axial' or Table 3's
      'local' (`gsa_keras.spec.ATTENTION_VARIANTS`).
    num_heads: attention heads (8 in the paper).
    max_relative_shift: `L` of eq. 5; None (default) is global attention.
    stem_type: 'v0' (7x7 convolution) or 'v1' (three 3x3 convolutions).
    zero_init_residual: start each residual branch's last batch norm at gamma = 0.
    norm_momentum: batch normalisation momentum (default 0.9, as the registered
      experiments: a short `fit` still evaluates well; the moving statistics need
      about 1/(1 - momentum) steps to follow the data).
    norm_epsilon: batch normalisation epsilon; default the run's with `weights`,
      else 1e-5 (the registered experiments').
    name: the model's name; default from the variant, e.g. 'gsa_resnet50'.

  Returns:
    A functional Keras model.
  """

_TITLES = {
    "GSAResNet26": ("GSA-ResNet-26", "Ramachandran et al.'s 26-layer depth "
                    "(1, 2, 4, 1 blocks) with GSA modules (Section 4)."),
    "GSAResNet38": ("GSA-ResNet-38", "2, 3, 5, 2 blocks with GSA modules (Table 6)."),
    "GSAResNet50": ("GSA-ResNet-50", "the paper's main network (Section 4, Table 6)."),
    "GSAResNet101": ("GSA-ResNet-101", "3, 4, 23, 3 blocks with GSA modules (Table 6)."),
    "GSAResNet152": ("GSA-ResNet-152", "3, 8, 36, 3 blocks with GSA modules."),
    "GSAMResNet50": ("GSA-M-ResNet-50", "Table 3's M-ResNet-50 (block channels halved, "
                     "every layer's filters scaled by 1.125) with GSA modules."),
}


def _constructor(keras_module, module_name, name, model_id, width_variant):
  """The constructor `name` of `VARIANTS`, bound to `keras_module`."""

  def constructor(include_top=True, weights=None, input_tensor=None, input_shape=None,
                  pooling=None, classes=1000, classifier_activation="softmax",
                  **options):
    return gsa_resnet(keras_module, model_id, width_variant, include_top=include_top,
                      weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation, **options)

  constructor.__name__ = constructor.__qualname__ = name
  constructor.__module__ = module_name
  constructor.__doc__ = _CONSTRUCTOR_DOC.format(*_TITLES[name])
  return constructor


def constructors(keras_module, module_name: str):
  """{name: constructor} of `VARIANTS`, bound to `keras_module`."""
  return {name: _constructor(keras_module, module_name, name, model_id, width_variant)
          for name, (model_id, width_variant) in VARIANTS.items()}
