"""How the outputs of GSA modules, blocks and networks grow with the scale of their input
in evaluation mode: a growth exponent per part.

  python -m studies.input_scale --out study_results/input_scale \
      [--checkpoint_path MODEL_DIR ...] [--experiment gsa_resnet_fashion_mnist] [--quick]

For inputs `x, 2x, 4x` the growth exponent of a part between two scales `s < t` is
`log(size(t x) / size(s x)) / log(t / s)`, where `size` is the root mean square of the
part's output over the batch: 1 for a linear part, 2 for a quadratic one. Three levels:

- one GSA module (`GlobalSelfAttention`, Section 3.1) on `relu(N(0, 1))` inputs, split
  into the terms of its output as Appendix B writes them: the content attention
  `Q (softmax(K)^T V)` (eqs. 1, 4), the column attention `(Q P^H) V` (eqs. 2, 7), the
  batch norm after it, the row attention `(Q P^W) BN(Y^H)` and the module's output
  `Y^C + Y^W` (eq. 8); in evaluation mode (the batch norm's moving statistics, set
  by training-mode batches of the same distribution first) and in training mode; and
  the module's output for every Table 4 variant (the registered operators of the GSA
  family, `gsa_keras.operators`);
- one bottleneck block as the network builds it (`gsa_keras.network.ResNetBuilder`:
  1x1 conv, BN, ReLU, attention, BN, ReLU, 1x1 conv, BN, identity shortcut, ReLU),
  for the GSA module, its Table 4 variants and a 3x3 convolution, each part;
- with `--checkpoint_path`, a trained network (a `gsa_keras.train` model_dir): its
  evaluation images (the run's validation data) with the network's input scaled, the
  size and largest |activation| after each block's attention and of each block's
  output, and the largest |logit|.

Writes `input_scale.json` (every measurement) and `input_scale.md` (the tables) to
`--out`. `--quick` measures fewer seeds and images (the test's setting).
"""

import argparse
import json
import math
import pathlib
import statistics
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

SCALES = (1.0, 2.0, 4.0)
JSON_FILE = "input_scale.json"
MARKDOWN_FILE = "input_scale.md"
# One GSA module's input: (batch, height, width, channels); 8 heads of 4 key channels.
LAYER_SHAPE = (8, 16, 16, 32)
# One bottleneck block: input (batch, height, width, channels), inner channels.
BLOCK_SHAPE = (8, 16, 16, 128)
BLOCK_FILTERS = 32
# Moving statistics: this many training-mode batches at this momentum (0.5**20 ~ 1e-6
# of the initial statistics remains).
CALIBRATION_BATCHES = 20
CALIBRATION_MOMENTUM = 0.5
# The block's batch norms: the GSA layer's own default, with which the committed
# measurement was made.
BLOCK_NORM_EPSILON = 1e-3
# The layer's terms, in the order Appendix B computes them.
LAYER_PARTS = ("content", "column", "column_norm", "row", "module")
BLOCK_PARTS = ("attention_input", "spatial", "spatial_norm", "residual", "block")
CONVOLUTION = "conv"  # The block whose spatial operator is a 3x3 convolution.


# -- Sizes and exponents. -----------------------------------------------------------------


def rms(tensor) -> float:
  """The root mean square of `tensor`'s entries, in float64."""
  values = np.asarray(tensor, np.float64)
  return float(np.sqrt(np.mean(np.square(values))))


def _log_ratio(first: float, second: float) -> Optional[float]:
  """`log(second / first)`, None unless both are finite and positive (an overflowed
  network's sizes are infinite)."""
  if not all(math.isfinite(value) and value > 0 for value in (first, second)):
    return None
  return math.log(second / first)


def growth_exponents(sizes: Sequence[float], scales: Sequence[float] = SCALES
                     ) -> List[Optional[float]]:
  """`log(size_t / size_s) / log(t / s)` for each consecutive pair of scales (None
  where a size is not finite)."""
  ratios = [_log_ratio(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
  return [None if ratio is None else ratio / math.log(scales[i + 1] / scales[i])
          for i, ratio in enumerate(ratios)]


def _inputs(shape, seed: int):
  """`relu(N(0, 1))` of `shape`: what a block's ReLU hands the next layer."""
  rng = np.random.default_rng(seed)
  return np.maximum(rng.standard_normal(shape), 0.0).astype(np.float32)


def _calibrate(model, shape, seed: int) -> None:
  """Sets `model`'s moving statistics by training-mode batches of `_inputs`."""
  for batch in range(CALIBRATION_BATCHES):
    model(_inputs(shape, seed * 1000 + 1 + batch), training=True)


# -- One GSA module. ------------------------------------------------------------------------


def gsa_layer(seed: int, variant: str = "gsa", query_normalization=None):
  """A tf_keras `GlobalSelfAttention` of the Table 4 `variant` for `LAYER_SHAPE`
  inputs (queries normalised by `query_normalization`), with its batch norm's moving
  statistics set by `_calibrate`."""
  import tf_keras
  from gsa_keras.layers import tf_keras as gsa_layers
  tf_keras.utils.set_random_seed(seed)
  layer = gsa_layers.GlobalSelfAttention.from_variant(
      variant, LAYER_SHAPE[-1], num_heads=8, norm_momentum=CALIBRATION_MOMENTUM,
      query_normalization=query_normalization)
  _calibrate(layer, LAYER_SHAPE, seed)
  return layer


def layer_terms(layer, inputs, training: bool) -> Dict[str, object]:
  """The terms of a GSA module's output for `inputs` (Appendix B), by its own weights.

  'content': eq. 4's `Y^C = Q (softmax(K)^T V)`; 'column': eq. 7's `Y^H = (Q P^H) V`;
  'column_norm': `BN(Y^H)`; 'row': `Y^W = (Q P^W) BN(Y^H)`; 'module': the layer's
  output, `Y^C + Y^W` (eq. 8). A variant without a term has no entry for it (without
  the row attention, 'column' is the positional output; with only one axis there is no
  batch norm). Per-head tensors `(b, x, y, n, v)`, 'module' `(b, x, y, filters)`.
  """
  import tensorflow as tf
  from gsa_keras import ops
  inputs = tf.convert_to_tensor(inputs)
  keys, queries, values, positions = layer._project(inputs)
  terms = {}
  if layer.use_content:
    terms["content"] = ops.content_attention(keys, queries, values)
  positional = values
  for axis in layer._attended_axes:
    if axis == "row" and layer._uses_column_norm:
      positional = terms["column_norm"] = layer._normalize_column_output(
          positional, training)
    positional = terms[axis] = ops.positional_attention(
        queries, positional, positions[axis], axis)
  terms["module"] = layer(inputs, training=training)
  return terms


def measure_layer(seed: int, variant: str = "gsa", training: bool = False,
                  scales: Sequence[float] = SCALES) -> Dict[str, Dict]:
  """{term: {'rms': [per scale], 'exponents': [per pair]}} of one GSA module."""
  layer = gsa_layer(seed, variant)
  inputs = _inputs(LAYER_SHAPE, seed)
  sizes = {}
  for scale in scales:
    for term, value in layer_terms(layer, scale * inputs, training).items():
      sizes.setdefault(term, []).append(rms(value))
  return {term: {"rms": values, "exponents": growth_exponents(values, scales)}
          for term, values in sizes.items()}


# -- One bottleneck block. ------------------------------------------------------------------


def bottleneck_block(seed: int, variant: str = "gsa"):
  """(block model, {part: output tensor}) for a tf_keras bottleneck block built by
  `gsa_keras.network.ResNetBuilder` (the second block of a group: identity shortcut,
  no pooling), with its spatial operator the GSA `variant` or, for `CONVOLUTION`, a
  3x3 convolution; moving statistics set by `_calibrate`.

  The last batch norm starts at gamma = 1 (`zero_init_residual=False`), so that the
  residual branch of an untrained block is not zero.
  """
  import tf_keras
  from gsa_keras import network
  from gsa_keras import spec
  tf_keras.utils.set_random_seed(seed)
  attention = variant != CONVOLUTION
  architecture = spec.Architecture(
      model_id=26, attention_variant=variant if attention else spec.default(
          "attention_variant"),
      zero_init_residual=False, norm_momentum=CALIBRATION_MOMENTUM,
      norm_epsilon=BLOCK_NORM_EPSILON)
  builder = network.ResNetBuilder(tf_keras, architecture)
  group = spec.GroupSpec(number=1, filters=BLOCK_FILTERS, output_filters=BLOCK_SHAPE[-1],
                         repeats=2, use_attention=attention, downsample=False)
  inputs = tf_keras.Input(BLOCK_SHAPE[1:])
  outputs = builder._bottleneck_block(inputs, group, 1, 0.0)
  name = "group1_block2"
  spatial = f"{name}_{builder.spatial_operator(group).layer_suffix}"
  model = tf_keras.Model(inputs, outputs)
  parts = {
      "attention_input": model.get_layer(spatial).input,
      "spatial": model.get_layer(spatial).output,
      "spatial_norm": model.get_layer(f"{spatial}_bn").output,
      "residual": model.get_layer(f"{name}_conv3_bn").output,
      "block": outputs,
  }
  _calibrate(model, BLOCK_SHAPE, seed)
  return model, parts


def measure_block(seed: int, variant: str = "gsa", training: bool = False,
                  scales: Sequence[float] = SCALES) -> Dict[str, Dict]:
  """{part: {'rms': [per scale], 'exponents': [per pair]}} of one bottleneck block:
  'attention_input' (after the first 1x1 conv, BN and ReLU), 'spatial' (the attention
  module's or 3x3 convolution's output), 'spatial_norm' (its batch norm), 'residual'
  (the last batch norm: the residual branch) and 'block' (after the sum and ReLU);
  for 'spatial', 'spatial_norm' and 'residual' also 'degrees': their growth relative
  to that of 'attention_input' (`degrees`)."""
  import tf_keras
  model, parts = bottleneck_block(seed, variant)
  probe = tf_keras.Model(model.inputs, list(parts.values()))
  inputs = _inputs(BLOCK_SHAPE, seed)
  sizes = {part: [] for part in parts}
  for scale in scales:
    for part, value in zip(parts, probe(scale * inputs, training=training)):
      sizes[part].append(rms(value))
  record = {part: {"rms": values, "exponents": growth_exponents(values, scales)}
            for part, values in sizes.items()}
  for part in ("spatial", "spatial_norm", "residual"):
    record[part]["degrees"] = degrees(sizes[part], sizes["attention_input"])
  return record


def degrees(outputs: Sequence[float], inputs: Sequence[float]) -> List[float]:
  """`log(out_t / out_s) / log(in_t / in_s)` for consecutive scales: the growth of a
  part relative to the growth of its own input (the first batch norm and ReLU of a
  block do not scale its input exactly with the block's)."""
  ratios = [(_log_ratio(outputs[i], outputs[i + 1]), _log_ratio(inputs[i], inputs[i + 1]))
            for i in range(len(outputs) - 1)]
  return [None if None in pair or not pair[1] else pair[0] / pair[1] for pair in ratios]


# -- A trained network. ---------------------------------------------------------------------


def _blocks(model):
  """[(block name, owning model, spatial operator, block sum)] of a GSA-ResNet (or
  ResNet) classifier, in the order they run: the spatial operator is the block's
  attention module, or its 3x3 convolution in a convolutional group."""
  from gsa_keras import visualize
  blocks = []
  for owner, layer in visualize._walk(model):
    if layer.name.startswith("group") and layer.name.endswith("_add"):
      block = layer.name[:-len("_add")]
      names = {each.name for each in owner.layers}
      spatial = (f"{block}_attention" if f"{block}_attention" in names
                 else f"{block}_conv2")
      blocks.append((block, owner, owner.get_layer(spatial), layer))
  return blocks


def network_images(params, count: int):
  """The first `count` images (normalised, as the network takes them) of the run's
  validation data, and their labels."""
  from official.core import task_factory
  from gsa_keras.data import inputs as data_inputs
  task_config = params.task
  data_inputs.prepare(task_config, "eval")
  task = task_factory.get_task(task_config)
  images, labels = [], []
  for batch_images, batch_labels in task.build_inputs(task_config.validation_data):
    images.append(batch_images.numpy())
    labels.append(batch_labels.numpy())
    if sum(len(batch) for batch in images) >= count:
      break
  images, labels = np.concatenate(images)[:count], np.concatenate(labels)[:count]
  if labels.ndim == 2:
    labels = labels.argmax(axis=1)
  return images, labels


def measure_network(model, images, scales: Sequence[float] = SCALES,
                    labels=None, batch_size: int = 64) -> Dict[str, object]:
  """Per block and per scale of the network's input, in evaluation mode.

  The network's input (the normalised `images`, as the evaluation pipeline gives
  them) is multiplied by each scale: a change of the input's scale, not of the
  images' brightness (the normalisation's offset is scaled too).

  Returns:
    'blocks': [{'block', 'attention_rms', 'attention_max', 'output_rms',
    'output_max', 'attention_exponents', 'output_exponents'}], 'attention' the
    block's attention module (its 3x3 convolution in a convolutional group),
    'output' the block's sum before its ReLU; 'rms' the median over images of each
    image's root mean square, 'max' the largest |activation| over all images, each a
    list over `scales`, inf where an activation overflowed (inf or NaN);
    'logits': {'max', 'median_max', 'exponents', 'non_finite_share'} of each
    image's largest |logit| (inf if one is not finite); given integer `labels`,
    'top1': the accuracy at each scale.
  """
  import tensorflow as tf
  import tf_keras
  blocks = _blocks(model)
  backbone = blocks[0][1]
  probe = tf_keras.Model(
      backbone.inputs,
      [layer.output for _, _, layer, _ in blocks] + [add.output for *_, add in blocks])
  run_probe = tf.function(lambda x: probe(x, training=False))
  run_model = tf.function(lambda x: model(x, training=False))
  per_scale = []
  for scale in scales:
    outputs, logits = [], []
    for start in range(0, len(images), batch_size):
      batch = scale * images[start:start + batch_size]
      outputs.append([value.numpy() for value in run_probe(batch)])
      logits.append(run_model(batch).numpy())
    per_scale.append(([np.concatenate(parts) for parts in zip(*outputs)],
                      np.concatenate(logits)))

  def image_rms(values):
    """The median over images of each image's RMS; inf where it overflowed."""
    values = values.astype(np.float64).reshape(len(values), -1)
    per_image = np.where(np.isfinite(values).all(axis=1),
                         np.sqrt(np.mean(np.square(values), axis=1)), np.inf)
    return float(np.median(per_image))

  def largest(values):
    """The largest |value|; inf if any overflowed (inf or NaN)."""
    values = np.abs(values.astype(np.float64))
    return float(values.max()) if np.isfinite(values).all() else math.inf

  rows = []
  for index, (name, *_) in enumerate(blocks):
    row = {"block": name}
    for kind, offset in (("attention", 0), ("output", len(blocks))):
      values = [outputs[index + offset] for outputs, _ in per_scale]
      row[f"{kind}_rms"] = [image_rms(value) for value in values]
      row[f"{kind}_max"] = [largest(value) for value in values]
      row[f"{kind}_exponents"] = growth_exponents(row[f"{kind}_rms"], scales)
    rows.append(row)
  per_image = [np.where(np.isfinite(logits).all(axis=1),
                        np.abs(logits.astype(np.float64)).max(axis=1), np.inf)
               for _, logits in per_scale]
  medians = [float(np.median(value)) for value in per_image]
  record = {
      "blocks": rows,
      "logits": {
          "max": [float(value.max()) for value in per_image],
          "median_max": medians,
          "exponents": growth_exponents(medians, scales),
          "non_finite_share": [float(np.mean(np.isinf(value))) for value in per_image],
      },
  }
  if labels is not None:
    record["top1"] = [float(np.mean(logits.argmax(axis=1) == labels))
                      for _, logits in per_scale]
  return record


def measure_run(checkpoint_path: str, experiment: str, images: int,
                scales: Sequence[float] = SCALES) -> Dict[str, object]:
  """`measure_network` of a `gsa_keras.train` run's checkpoint on its validation
  images, with the run's top-1 at each scale."""
  from gsa_keras import runs
  params = runs.load_params(experiment, runs.run_config_files(checkpoint_path))
  model = runs.load_model(params, checkpoint_path)
  pixels, labels = network_images(params, images)
  record = measure_network(model, pixels, scales, labels)
  record.update(checkpoint=runs.find_checkpoint(checkpoint_path), images=len(pixels))
  return record


# -- The study. -------------------------------------------------------------------------------


def _summary(measurements: Sequence[Dict[str, Dict]]) -> Dict[str, Dict]:
  """{part: {'exponents': [[min, median, max] per pair], 'rms': median rms at scale 1}}
  over seeds."""
  summary = {}
  for part in measurements[0]:
    pairs = list(zip(*(m[part]["exponents"] for m in measurements)))
    summary[part] = {
        "exponents": [[min(p), statistics.median(p), max(p)] for p in pairs],
        "rms_at_1": statistics.median(m[part]["rms"][0] for m in measurements),
    }
  return summary


def run_study(seeds: Sequence[int], variants: Sequence[str],
              scales: Sequence[float] = SCALES) -> Dict[str, object]:
  """The layer and block measurements over `seeds`, summarised."""
  record = {"scales": list(scales), "seeds": list(seeds), "layer": {}, "block": {}}
  for mode, training in (("evaluation", False), ("training", True)):
    record["layer"][f"gsa_terms_{mode}"] = _summary(
        [measure_layer(seed, "gsa", training, scales) for seed in seeds])
  record["layer"]["variants_evaluation"] = {
      variant: _summary([measure_layer(seed, variant, False, scales)
                         for seed in seeds])["module"]
      for variant in variants}
  for variant in list(variants) + [CONVOLUTION]:
    record["block"][variant] = _summary(
        [measure_block(seed, variant, False, scales) for seed in seeds])
  return record


def _pairs(scales):
  return [f"{scales[i]:g}x -> {scales[i + 1]:g}x" for i in range(len(scales) - 1)]


def _exponent_cell(triple) -> str:
  low, median, high = triple
  return f"{median:.2f} [{low:.2f}, {high:.2f}]"


def markdown(record: Dict[str, object]) -> str:
  """The record's tables."""
  scales = record["scales"]
  pairs = _pairs(scales)
  lines = [
      "# Growth of GSA outputs with the scale of their input",
      "",
      f"Written by `python -m studies.input_scale`. Growth exponent of each part between "
      f"input scales (1: linear, 2: quadratic, 3: cubic): median [min, max] over seeds "
      f"{record['seeds']}. Inputs `relu(N(0, 1))`; batch norms in evaluation mode use "
      f"moving statistics set by {CALIBRATION_BATCHES} training-mode batches of the "
      "same distribution.",
      "",
  ]

  def table(title, rows):
    lines.extend([f"## {title}", "", "| part | " + " | ".join(pairs) + " | RMS at 1x |",
                  "|---" * (len(pairs) + 2) + "|"])
    for name, summary in rows:
      cells = [_exponent_cell(triple) for triple in summary["exponents"]]
      lines.append(f"| {name} | " + " | ".join(cells) + f" | {summary['rms_at_1']:.3g} |")
    lines.append("")

  for mode in ("evaluation", "training"):
    terms = record["layer"][f"gsa_terms_{mode}"]
    table(f"One GSA module, {mode} mode: its terms (Appendix B)",
          [(part, terms[part]) for part in LAYER_PARTS if part in terms])
  table("One module per Table 4 variant, evaluation mode: the module's output",
        list(record["layer"]["variants_evaluation"].items()))
  for variant, parts in record["block"].items():
    operator = "3x3 convolution" if variant == CONVOLUTION else f"`{variant}` module"
    table(f"One bottleneck block with a {operator}, evaluation mode",
          [(part, parts[part]) for part in BLOCK_PARTS])
  for run in record.get("networks", []):
    lines.extend([
        f"## Network `{run['checkpoint']}`: {run['images']} validation images, input "
        "scaled",
        "",
        "Per block: median over images of the RMS after attention (after the 3x3 "
        "convolution in a convolutional block) and of the block's output (before its "
        "ReLU), the largest |value| over all images, per input scale "
        f"{', '.join(f'{s:g}x' for s in scales)}; exponents of the median RMS "
        "(inf: overflowed to inf or NaN).",
        "",
        "| block | attention RMS | attention max | exponents | output RMS | output max "
        "| exponents |",
        "|---|---|---|---|---|---|---|",
    ])

    def numbers(values, digits=3):
      return " / ".join("-" if value is None else f"{value:.{digits}g}"
                        for value in values)

    for row in run["blocks"]:
      lines.append(
          f"| {row['block']} | {numbers(row['attention_rms'])} | "
          f"{numbers(row['attention_max'])} | {numbers(row['attention_exponents'])} | "
          f"{numbers(row['output_rms'])} | {numbers(row['output_max'])} | "
          f"{numbers(row['output_exponents'])} |")
    logits = run["logits"]
    lines.extend([
        "",
        f"Largest |logit|: median over images {numbers(logits['median_max'])}, maximum "
        f"{numbers(logits['max'])}; exponents of the median {numbers(logits['exponents'])}; "
        f"share of images with a logit that is not finite "
        f"{numbers(logits['non_finite_share'])}."
        + (f" Top-1: {numbers(run['top1'])}." if "top1" in run else ""),
        "",
    ])
  return "\n".join(lines)


def _json_safe(value):
  """`value` with every infinite float replaced by the string 'inf'."""
  if isinstance(value, dict):
    return {key: _json_safe(item) for key, item in value.items()}
  if isinstance(value, list):
    return [_json_safe(item) for item in value]
  if isinstance(value, float) and not math.isfinite(value):
    return "inf" if value > 0 else "-inf"
  return value


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
  parser = argparse.ArgumentParser(prog="python -m studies.input_scale",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="directory for the JSON and tables")
  parser.add_argument("--checkpoint_path", action="append", default=[],
                      help="a gsa_keras.train model_dir or checkpoint prefix (repeat)")
  parser.add_argument("--experiment", default="gsa_resnet_fashion_mnist",
                      help="the runs' experiment (their params.yaml overrides it)")
  parser.add_argument("--scales", default=",".join(f"{s:g}" for s in SCALES),
                      help="input scales, increasing, comma-separated")
  parser.add_argument("--seeds", type=int, default=10, help="seeds per measurement")
  parser.add_argument("--images", type=int, default=1000, help="images per network")
  parser.add_argument("--variants", default="",
                      help="Table 4 variants to measure, comma-separated (default all)")
  parser.add_argument("--quick", action="store_true",
                      help="2 seeds, the gsa, content and positional variants, 32 images")
  args = parser.parse_args(argv)
  scales = [float(s) for s in args.scales.split(",")]
  if len(scales) < 2 or any(b <= a for a, b in zip(scales, scales[1:])) or scales[0] <= 0:
    parser.error(f"--scales: at least two increasing positive numbers, got {args.scales!r}")
  from gsa_keras import operators
  table4 = tuple(operators.family_options(operators.GSA))
  if args.quick:
    seeds, variants, images = range(2), ("gsa", "content", "positional"), 32
  else:
    variants = tuple(args.variants.split(",")) if args.variants else table4
    for variant in variants:
      if variant not in table4:
        parser.error(f"--variants: {variant!r} is not one of {list(table4)}")
    seeds, images = range(args.seeds), args.images
  record = run_study(list(seeds), variants, scales)
  record["networks"] = [measure_run(path, args.experiment, images, scales)
                        for path in args.checkpoint_path]
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  # Overflowed sizes are written as the string "inf" (JSON has no infinity).
  (out / JSON_FILE).write_text(json.dumps(_json_safe(record), indent=1) + "\n")
  (out / MARKDOWN_FILE).write_text(markdown(record) + "\n")
  print(f"Wrote {out / JSON_FILE} and {out / MARKDOWN_FILE}", file=sys.stderr)
  return record


if __name__ == "__main__":
  main()
