"""What a GSA module looks at: its attention maps for one image, as arrays and PNGs.

For a chosen pixel, the positional attention weights over its column and its row
(eq. 7's `S = Q P` for that pixel's query, one vector per head), and for the whole
image the content attention's global context weights (eq. 4's `softmax(K)`: per head
and key channel, a distribution over the pixels). The layer computes them itself
(`GlobalSelfAttention.attention_weights`), at its feature resolution; they are
upsampled over the image for the pictures.

  python -m gsa_keras.visualize --experiment gsa_resnet_digits \
      --checkpoint_path /tmp/gsa_digits --image digit.png --pixel 12,20 \
      --layer group1_block1_attention --out /tmp/gsa_maps

`--checkpoint_path` (alias `--checkpoint`) is a training run's `model_dir` or one of
its checkpoint prefixes; either way the run's `params.yaml` describes the model unless
`--config_file` is given. The image is decoded, centre-cropped, resized and normalised
as the exported model does it (`gsa_keras.serving.module`), so the maps are drawn over
the image the model evaluates; `--pixel row,column` is in that image.
"""

import dataclasses
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from official.vision.configs import image_classification as ic_config
from official.vision.ops import preprocess_ops

from gsa_keras import cli
from gsa_keras import runs
from gsa_keras.layers import definitions
from gsa_keras.serving import module as serving_module

# Positional weights have no softmax and take both signs: a diverging colour map,
# centred on zero. Content weights are a distribution: a sequential one.
_POSITIONAL_COLORMAP = "RdBu_r"
_CONTENT_COLORMAP = "magma"
_OVERLAY_ALPHA = 0.65


@dataclasses.dataclass(frozen=True)
class AttentionMaps:
  """One GSA module's attention for one image, at the module's feature resolution.

  Attributes:
    layer: the module's name.
    image: `(H, W, 3)` uint8, the image as the model sees it (resized).
    feature_size: `(h, w)` of the module's input feature map.
    pixel: `(row, column)` of the chosen pixel in the feature map.
    image_pixel: `(row, column)` of the chosen pixel in `image`.
    column: `(heads, h)`: the chosen pixel's positional weights over the rows of its
      column, `S[i] = q . P^column[row, i]`; None if the module has no column term.
    row: `(heads, w)`: its weights over the columns of its row,
      `S[j] = q . P^row[column, j]`; None without a row term.
    content: `(heads, key_channels, h, w)`: `softmax(K)` over the pixels, each
      (head, channel) summing to 1; None without a content term.
  """
  layer: str
  image: np.ndarray
  feature_size: Tuple[int, int]
  pixel: Tuple[int, int]
  image_pixel: Tuple[int, int]
  column: Optional[np.ndarray]
  row: Optional[np.ndarray]
  content: Optional[np.ndarray]

  def heat_maps(self) -> Dict[str, np.ndarray]:
    """`(heads, H, W)` maps over the image, nearest-neighbour upsampled.

    'column' and 'row' are NaN outside the chosen pixel's column and row; 'content'
    is each head's mean over its key channels (still summing to 1 over the
    feature map).
    """
    height, width = self.feature_size
    row_index, column_index = self.pixel
    maps = {}
    if self.column is not None:
      strip = np.full((self.column.shape[0], height, width), np.nan, np.float32)
      strip[:, :, column_index] = self.column
      maps["column"] = strip
    if self.row is not None:
      strip = np.full((self.row.shape[0], height, width), np.nan, np.float32)
      strip[:, row_index, :] = self.row
      maps["row"] = strip
    if self.content is not None:
      maps["content"] = self.content.mean(axis=1)
    return {name: _upsample(values, self.image.shape[:2]) for name, values in maps.items()}


def _upsample(maps: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Nearest-neighbour upsampling of `(heads, h, w)` to `(heads, H, W)`, NaNs kept."""
  _, height, width = maps.shape
  rows = np.arange(size[0]) * height // size[0]
  columns = np.arange(size[1]) * width // size[1]
  return maps[:, rows[:, None], columns[None, :]]


# -- Finding the module and its input. ---------------------------------------------------


def _walk(model):
  """(functional model owning the layer, layer) for every layer, nested models too."""
  for layer in model.layers:
    if hasattr(layer, "layers"):
      yield from _walk(layer)
    else:
      yield model, layer


def gsa_layer_names(model) -> List[str]:
  """The names of the GSA modules of `model`, in the order they run."""
  return [layer.name for _, layer in _walk(model)
          if isinstance(layer, definitions.GlobalSelfAttentionDefinition)]


def _find_gsa_layer(model, name: Optional[str]):
  modules = [(owner, layer) for owner, layer in _walk(model)
             if isinstance(layer, definitions.GlobalSelfAttentionDefinition)]
  if not modules:
    raise ValueError("The model has no GlobalSelfAttention layer.")
  if name is None:
    return modules[0]
  for owner, layer in modules:
    if layer.name == name:
      return owner, layer
  raise ValueError(f"No GSA layer named {name!r}; the model's GSA layers are "
                   f"{[layer.name for _, layer in modules]}.")


def _first_call_input(layer):
  """The symbolic input of the layer's first call, in the model that built it."""
  if hasattr(layer, "get_input_at"):  # tf_keras: later calls of the model add nodes.
    return layer.get_input_at(0)
  return layer.input


def layer_features(model, layer_name: Optional[str], images) -> Tuple[object, tf.Tensor]:
  """(the GSA layer, its input for `images`).

  The functional model owning the layer (the backbone, in a Model Garden classifier)
  must take the images as its input, as Model Garden backbones do.
  """
  owner, layer = _find_gsa_layer(model, layer_name)
  keras_module = layer._keras
  extractor = keras_module.Model(owner.inputs, _first_call_input(layer))
  return layer, extractor(images, training=False)


# -- The maps. -------------------------------------------------------------------------


def attention_maps(model, image: np.ndarray, pixel: Tuple[int, int],
                   layer_name: Optional[str] = None,
                   preprocess: Optional[Callable[[np.ndarray], tf.Tensor]] = None
                   ) -> AttentionMaps:
  """The attention maps of one GSA module of `model` for one image.

  Args:
    model: a functional Keras model (e.g. a Model Garden classifier) with GSA modules.
    image: `(H, W, 3)` uint8, the image as the model sees it (cropped and resized to
      its input size: `load_image`).
    pixel: `(row, column)` in `image`.
    layer_name: the GSA module; default the first one.
    preprocess: maps `image` to the model's input (without the batch axis); default
      `normalize`, the Model Garden classifiers' normalization.

  Returns:
    `AttentionMaps` at the module's feature resolution.
  """
  image = np.asarray(image)
  height, width = image.shape[:2]
  if not (0 <= pixel[0] < height and 0 <= pixel[1] < width):
    raise ValueError(f"`pixel` {tuple(pixel)} is outside the {height}x{width} image.")
  preprocess = preprocess or normalize
  layer, features = layer_features(model, layer_name, preprocess(image)[tf.newaxis])
  _, feature_height, feature_width, _ = features.shape
  row_index = pixel[0] * feature_height // height
  column_index = pixel[1] * feature_width // width
  weights = {kind: value[0].numpy()
             for kind, value in layer.attention_weights(features).items()}
  content = weights.get("content")
  return AttentionMaps(
      layer=layer.name, image=image, feature_size=(feature_height, feature_width),
      pixel=(row_index, column_index), image_pixel=tuple(pixel),
      column=(weights["column"][row_index, column_index]
              if "column" in weights else None),
      row=weights["row"][row_index, column_index] if "row" in weights else None,
      content=None if content is None else np.transpose(content, (2, 3, 0, 1)))


# -- Images. ---------------------------------------------------------------------------


def load_image(path: str, params, model) -> np.ndarray:
  """An image file as the experiment's model evaluates it: `(height, width, 3)` uint8,
  decoded, centre-cropped and resized as the exported model's signatures do
  (`gsa_keras.serving.module.ClassifierModule.eval_image`)."""
  module = serving_module.ClassifierModule(params, model=model)
  return module.eval_image(tf.io.read_file(path)).numpy()


def normalize(image: np.ndarray) -> tf.Tensor:
  """The Model Garden classifiers' input normalization (ImageNet mean and stddev)."""
  return preprocess_ops.normalize_image(
      tf.cast(image, tf.float32), offset=preprocess_ops.MEAN_RGB,
      scale=preprocess_ops.STDDEV_RGB)


# -- Pictures. -------------------------------------------------------------------------


def save_attention_maps(maps: AttentionMaps, out_dir: str) -> List[str]:
  """Writes one PNG per map kind ('column', 'row', 'content'), a panel per head.

  Returns:
    The paths written, `out_dir/<layer>_<kind>.png`.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  os.makedirs(out_dir, exist_ok=True)
  gray = maps.image.mean(axis=-1)
  titles = {
      "column": "positional weights over its column (q . P)",
      "row": "positional weights over its row (q . P)",
      "content": "content: global context weights softmax(K), mean over key channels",
  }
  paths = []
  for kind, heat in maps.heat_maps().items():
    heads = heat.shape[0]
    columns = min(heads, 4)
    rows = -(-heads // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows + 0.6),
                                squeeze=False)
    for head, axis in enumerate(axes.flat):
      axis.axis("off")
      if head >= heads:
        continue
      axis.imshow(gray, cmap="gray")
      if kind == "content":
        shown = axis.imshow(heat[head], cmap=_CONTENT_COLORMAP, alpha=_OVERLAY_ALPHA)
      else:
        limit = float(np.nanmax(np.abs(heat[head]))) or 1.0
        shown = axis.imshow(np.ma.masked_invalid(heat[head]), cmap=_POSITIONAL_COLORMAP,
                            vmin=-limit, vmax=limit, alpha=_OVERLAY_ALPHA)
        axis.plot(maps.image_pixel[1], maps.image_pixel[0], "k+", markersize=12)
      axis.set_title(f"head {head}", fontsize=9)
      figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.04)
    where = (f", pixel {maps.image_pixel} (feature {maps.pixel})" if kind != "content"
             else "")
    figure.suptitle(f"{maps.layer}: {titles[kind]}{where}", fontsize=10)
    figure.tight_layout()
    path = os.path.join(out_dir, f"{maps.layer}_{kind}.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    paths.append(path)
  return paths


# -- The command. ----------------------------------------------------------------------


def _parse_pixel(text: str) -> Tuple[int, int]:
  try:
    row, column = (int(v) for v in text.split(","))
  except ValueError:
    raise ValueError(f"--pixel must be 'row,column' (two integers), got {text!r}.") from None
  return row, column


FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("experiment", "gsa_resnet_digits", "Registered experiment name.")
  flags.DEFINE_string("checkpoint_path", None,
                      "A training model_dir (its latest checkpoint) or a checkpoint "
                      "prefix (<model_dir>/ckpt-600).")
  flags.DEFINE_alias("checkpoint", "checkpoint_path")
  flags.DEFINE_multi_string("config_file", [],
                            "YAML overrides; default: the training run's params.yaml.")
  flags.DEFINE_string("params_override", "", "Overrides, as for gsa_keras.train.")
  flags.DEFINE_string("image", None, "An image file (PNG, JPEG, ...).")
  flags.DEFINE_string("pixel", None, "row,column in the image as the model sees it "
                      "(cropped and resized); default: centre.")
  flags.DEFINE_string("layer", None, "GSA layer name; default: the first one. "
                      "--layer=list prints the names.")
  flags.DEFINE_string("out", "attention_maps", "Directory for the PNGs.")
  flags.mark_flags_as_required(["checkpoint_path"])


def main(argv):
  del argv
  with cli.command_line_errors("gsa_keras.visualize"):
    params = runs.load_params(
        FLAGS.experiment, runs.run_config_files(FLAGS.checkpoint_path, FLAGS.config_file),
        FLAGS.params_override, task_type=ic_config.ImageClassificationTask)
    if FLAGS.layer != "list":
      if FLAGS.image is None:
        raise ValueError("--image is required (or --layer=list).")
      if not tf.io.gfile.exists(FLAGS.image) or tf.io.gfile.isdir(FLAGS.image):
        raise FileNotFoundError(f"--image: no file {FLAGS.image!r}.")
    model = runs.load_model(params, FLAGS.checkpoint_path)
    if FLAGS.layer == "list":
      print("\n".join(gsa_layer_names(model)))
      return
    image = load_image(FLAGS.image, params, model)
    size = image.shape[:2]
    pixel = _parse_pixel(FLAGS.pixel) if FLAGS.pixel else (size[0] // 2, size[1] // 2)
    maps = attention_maps(model, image, pixel, FLAGS.layer)
  for path in save_attention_maps(maps, FLAGS.out):
    print(path)


def run(argv=None):
  """Console entry point (`gsa-keras-visualize`)."""
  define_flags()
  app.run(main, argv=argv or sys.argv)


if __name__ == "__main__":
  run()
