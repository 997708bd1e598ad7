"""The classification task's input pipeline applies what the configs say.

The Model Garden's task drops `crop_area_range` (its random crops then cover 8-100% of
the image); `gsa_keras.tasks.image_classification` passes it on. The crops are
measured on the real training pipeline: each training image is a coordinate chart
(red = 8 x row, green = 8 x column), so the slope of the colours across the parser's
output tells which part of the image it kept.
"""

import numpy as np
import pytest

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official.vision.configs import image_classification as ic_config
from official.vision.ops import preprocess_ops
from official.vision.tasks import image_classification as stock_task

from gsa_keras.configs import fashion_mnist as fm_config
from gsa_keras.configs import validation
from gsa_keras.data import digits
from gsa_keras.tasks import image_classification as gsa_task

from tests.support import experiment_configs

SIZE = 32
IMAGES = 320  # Five training batches of 64.


def coordinate_chart() -> np.ndarray:
  """A 32x32 RGB image with red = 8 x row, green = 8 x column, blue 128."""
  rows, cols = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
  return np.stack([8 * rows, 8 * cols, np.full_like(rows, 128)], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def chart_file(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("charts") / "charts.tfrecord")
  digits.write_examples(path, [coordinate_chart()] * IMAGES, [i % 10 for i in range(IMAGES)])
  return path


def kept_area(image: np.ndarray) -> float:
  """The share of the chart's area that a parsed 32x32 image shows.

  Undoes the parser's normalisation, then reads the kept height and width from the
  red slope down the rows and the green slope across the columns (bilinear resizing
  keeps them linear away from the borders; a flip only changes the green slope's
  sign)."""
  pixels = image * np.asarray(preprocess_ops.STDDEV_RGB) + np.asarray(
      preprocess_ops.MEAN_RGB)
  middle = slice(4, SIZE - 4)
  index = np.arange(SIZE)[middle]
  red = pixels[middle, SIZE // 2, 0]
  green = pixels[SIZE // 2, middle, 1]
  height = np.polyfit(index, red, 1)[0] / 8 * SIZE
  width = abs(np.polyfit(index, green, 1)[0]) / 8 * SIZE
  return height * width / SIZE**2


def parsed_areas(task_cls, chart_file, is_training=True, crop_area_range=None):
  params = exp_factory.get_exp_config("gsa_resnet_fashion_mnist")
  data = params.task.train_data if is_training else params.task.validation_data
  override = {"input_path": chart_file, "global_batch_size": 64, "seed": 1,
              "drop_remainder": is_training}
  if crop_area_range is not None:
    override["crop_area_range"] = crop_area_range
  data.override(override)
  task = task_cls(params.task)
  areas = []
  for images, _ in task.build_inputs(data).take(IMAGES // 64):
    areas.extend(kept_area(image) for image in images.numpy())
  return np.asarray(areas)


def test_training_crops_keep_the_configured_area(chart_file):
  areas = parsed_areas(task_factory.get_task_cls(
      type(exp_factory.get_exp_config("gsa_resnet_fashion_mnist").task)), chart_file)
  low, high = fm_config.CROP_AREA_RANGE
  assert len(areas) == IMAGES
  # 0.02: the slope's reading error (a whole chart reads 1.000 +- 0.003).
  assert areas.min() >= low - 0.02, sorted(areas)[:10]
  assert areas.max() <= high + 0.02, sorted(areas)[-10:]
  # The crops do vary over the range: a pipeline without crops fails here.
  assert areas.min() < low + 0.05 and np.mean(areas < 0.95) > 0.3, np.quantile(
      areas, [0, 0.5, 1])


def test_a_narrower_range_reaches_the_crops(chart_file):
  areas = parsed_areas(gsa_task.ImageClassificationTask, chart_file,
                       crop_area_range=(0.4, 0.5))
  assert areas.min() >= 0.38 and areas.max() <= 0.52, np.quantile(areas, [0, 0.5, 1])


def test_the_stock_task_ignores_the_range(chart_file):
  """What the measurement above catches: tf-models-official 2.20's own task crops
  8-100% whatever the config says. If this fails, the Model Garden now passes
  `crop_area_range` on, and `gsa_keras.tasks` may use its `build_inputs` again."""
  areas = parsed_areas(stock_task.ImageClassificationTask, chart_file)
  assert areas.min() < 0.5, np.quantile(areas, [0, 0.5, 1])


def test_evaluation_sees_the_whole_image(chart_file):
  areas = parsed_areas(gsa_task.ImageClassificationTask, chart_file, is_training=False)
  np.testing.assert_allclose(areas, 1.0, atol=0.01)


class _ParserArguments(Exception):  # noqa: N818 carries arguments; not an error
  """Carries the arguments a `classification_input.Parser` was built with."""


def _parser_arguments(params, split, monkeypatch):
  """The keyword arguments the task's `build_inputs` gives the parser for `split`."""

  def record(**kwargs):
    raise _ParserArguments(kwargs)

  monkeypatch.setattr(gsa_task.classification_input, "Parser", record)
  task = task_factory.get_task(params.task)
  with pytest.raises(_ParserArguments) as built:
    task.build_inputs(getattr(params.task, split))
  return built.value.args[0]


CONFIGS = [(name, None) for name in experiment_configs.EXPERIMENTS] + [
    (None, path) for path in experiment_configs.YAMLS]


@pytest.mark.parametrize("experiment,yaml_path", CONFIGS,
                         ids=[e or p.name for e, p in CONFIGS])
def test_every_data_field_a_config_sets_reaches_the_parser(experiment, yaml_path,
                                                           monkeypatch):
  """Each image-classification data field that an experiment or YAML of the project
  sets to other than its default is a parser argument with that value, or one of the
  fields the input reader or the task reads; none is silently dropped."""
  params = (exp_factory.get_exp_config(experiment) if experiment
            else experiment_configs.load(yaml_path))
  base_fields = set(cfg.DataConfig().as_dict())
  defaults = ic_config.DataConfig().as_dict()
  for split in ("train_data", "validation_data"):
    data = getattr(params.task, split).as_dict()
    arguments = _parser_arguments(params, split, monkeypatch)
    for name, value in data.items():
      if name in base_fields or value == defaults[name]:
        continue
      if name in gsa_task.PARSER_FIELDS:
        given = arguments[name]
        given = given.as_dict() if isinstance(given, hyperparams.Config) else given
        assert given == (tuple(value) if isinstance(value, list) else value), (
            split, name)
      else:
        assert name in gsa_task.SHARED_FIELDS + gsa_task.READER_FIELDS, (
            f"`task.{split}.{name}` is set but no code is known to read it")


def test_a_field_nothing_reads_is_refused():
  params = exp_factory.get_exp_config("gsa_resnet_digits")
  params.override({"task": {"train_data": {"aug_policy": "randaug"}}})
  with pytest.raises(ValueError, match=r"task\.train_data\.aug_policy.*aug_type"):
    params.validate()
  assert "aug_policy" in validation.UNREAD_DATA_FIELDS
