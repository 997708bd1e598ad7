"""Network level: GSA-ResNet vs the Model Garden's ResNet, inference and training step,
beside Table 3's local-attention ResNet and SAN19 (pairwise and patchwise), and Table 5's
GSA-ResNet with GSA in groups 2-4.

The networks are Model Garden `ClassificationModel`s
(`gsa_keras.classifier.build_classifier`) timed side by side per batch size and execution
mode. Parameters are counted on the timed models, FLOPs with `gsa_keras.flops` (the
convolutional ResNet's on the project's `gsa_resnet` with no attention groups, which is
the same network when its parameter count matches), and set beside the paper's Table 6
(`gsa_keras.paper`).

Peak memory: each network runs `Settings.memory_steps` alone in a fresh process
(`python -m benchmarks.network_level --probe SPEC`, graph mode, batch
`Settings.memory_batch`), which reports how much its peak resident memory grew over
two calls, from after the model was built (`benchmarks.scale`'s measure): activations,
what the backward pass keeps, temporaries and, for a training step, the optimizer's
slots.
"""

import dataclasses
import gc
from typing import Callable, Dict, Optional, Tuple

import tensorflow as tf
import tf_keras

from official.vision.configs import backbones as vision_backbones

from benchmarks import operators
from benchmarks import scale
from benchmarks import timing
from gsa_keras import classifier
from gsa_keras import flops
from gsa_keras import paper
from gsa_keras import san_network
from gsa_keras.configs import backbones as backbone_configs

GSA = "gsa_resnet"
RESNET = "resnet"
LOCAL = "local_resnet"  # Table 3: local self-attention (Ramachandran et al. 2019).
GSA_GROUPS_234 = "gsa_resnet_groups234"  # Table 5 row 2: GSA in groups 2-4 only.
# Table 3: SAN (Zhao et al. 2020), `backbone.type: san`, at `Settings.san_depth`.
SAN_PAIRWISE = "san_pairwise"
SAN_PATCHWISE = "san_patchwise"
_SAN_OPERATORS = {SAN_PAIRWISE: "pairwise", SAN_PATCHWISE: "patchwise"}
# The attention networks: rows of the paper's tables (`gsa_keras.paper`), whose
# backbone fields build them at any depth; RESNET is the Model Garden's.
_ATTENTION_NETWORKS = {GSA: "GSA-ResNet-50", LOCAL: "Local-ResNet-50",
                       GSA_GROUPS_234: "GSA-ResNet-50, groups 2-4"}
INFERENCE = "inference"
TRAINING = "training step"
STEPS = (INFERENCE, TRAINING)
_LEARNING_RATE = 1e-4  # Small: the weights must stay finite over the timed steps.


@dataclasses.dataclass(frozen=True)
class Settings:
  model_id: int = 50
  input_size: int = 224
  num_classes: int = 1000
  batches: Tuple[int, ...] = (1, 8)
  modes: Tuple[str, ...] = tuple(operators.MODES)
  steps: Tuple[str, ...] = STEPS
  warmup: int = 2
  repeats: int = 5  # A ResNet-50 training step at batch 8 takes seconds on 2 cores.
  san_depth: int = 19  # Table 3's SAN19; SAN10 is the smallest.
  memory_batch: Optional[int] = 8  # None: no peak-memory probes.
  memory_steps: Tuple[str, ...] = STEPS
  memory_networks: Optional[Tuple[str, ...]] = None  # None: every network.
  memory_timeout_seconds: float = 1800.0


def network_names(model_id: int, san_depth: int = 19) -> Dict[str, str]:
  """The paper's names of the networks (`gsa_keras.paper.BY_NAME` keys where the paper
  has the network), GSA and ResNet first."""
  return {GSA: f"GSA-ResNet-{model_id}", RESNET: f"ResNet-{model_id}",
          LOCAL: f"Local-ResNet-{model_id}",
          GSA_GROUPS_234: f"GSA-ResNet-{model_id}, groups 2-4",
          SAN_PAIRWISE: f"SAN{san_depth}-pairwise",
          SAN_PATCHWISE: f"SAN{san_depth}-patchwise"}


def backbone_config(key: str, model_id: int, san_depth: int = 19,
                    input_size: int = 224) -> backbone_configs.Backbone:
  """The backbone one-of of network `key` (a `network_names` key) at `model_id`, or
  SAN at `san_depth` (its footprints narrowed below 128x128 inputs)."""
  if key == RESNET:
    return backbone_configs.Backbone(
        type="resnet", resnet=vision_backbones.ResNet(model_id=model_id))
  if key in _SAN_OPERATORS:
    return backbone_configs.Backbone(type="san", san=backbone_configs.SAN(
        depth=san_depth, operator=_SAN_OPERATORS[key],
        narrow_footprints=input_size < san_network.minimum_input_size()))
  fields = dict(paper.network(_ATTENTION_NETWORKS[key]).config_fields(),
                model_id=model_id)
  return backbone_configs.Backbone(
      type="gsa_resnet", gsa_resnet=backbone_configs.GSAResNet(**fields))


def build_network(key: str, settings: Settings) -> tf_keras.Model:
  """The classifier of network `key` (a `network_names` key) at `settings`' sizes."""
  return classifier.build_classifier(
      backbone_config(key, settings.model_id, settings.san_depth, settings.input_size),
      settings.input_size, settings.num_classes)


def build_networks(settings: Settings) -> Dict[str, tf_keras.Model]:
  return {key: build_network(key, settings)
          for key in network_names(settings.model_id, settings.san_depth)}


def _trainable_params(model) -> int:
  return sum(int(tf.size(w)) for w in model.trainable_weights)


def costs(models: Dict[str, tf_keras.Model], settings: Settings) -> Dict[str, dict]:
  """Parameters and FLOPs (one image) of each network, beside the paper's."""
  conv_config = backbone_configs.GSAResNet(model_id=settings.model_id,
                                           attention_groups=[])
  counted = {key: flops.count_params_and_flops(models[key])
             for key in list(_ATTENTION_NETWORKS) + list(_SAN_OPERATORS)}
  counted[RESNET] = flops.count_params_and_flops(conv_config, settings.input_size,
                                                 settings.num_classes)
  numbers = {}
  if (settings.input_size, settings.num_classes) == (224, 1000):
    numbers = {n.name: {"paper_params": n.params_m and round(n.params_m * 1e6),
                        "paper_flops": n.gflops and round(n.gflops * 1e9),
                        "paper_runtime_ms": n.runtime_ms}
               for n in paper.NETWORKS}
  results = {}
  for key, name in network_names(settings.model_id, settings.san_depth).items():
    params = _trainable_params(models[key])
    same_network = counted[key].trainable_params == params
    results[key] = {
        "name": name, "label": name + (" (Model Garden)" if key == RESNET else ""),
        "params": params,
        "flops": counted[key].multiply_accumulate_flops if same_network else None,
        "paper_params": None, "paper_flops": None, "paper_runtime_ms": None,
        **numbers.get(name, {})}
  return results


def step_function(model: tf_keras.Model, batch: int, step: str, jit_compile: bool,
                  settings: Settings) -> Callable[[], object]:
  """A callable running inference or one SGD training step on a random batch."""
  images = tf.random.normal([batch, settings.input_size, settings.input_size, 3])
  labels = tf.one_hot(tf.random.uniform([batch], maxval=settings.num_classes,
                                        dtype=tf.int32), settings.num_classes)
  if step == INFERENCE:
    def run(x, y):
      del y
      return model(x, training=False)
  elif step == TRAINING:
    optimizer = tf_keras.optimizers.SGD(_LEARNING_RATE, momentum=0.9)

    def run(x, y):
      with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf_keras.losses.categorical_crossentropy(
            y, logits, from_logits=True))
      gradients = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(gradients, model.trainable_variables))
      return loss
  else:
    raise ValueError(f"`step` must be one of {STEPS}, got {step!r}.")
  compiled = tf.function(run, jit_compile=jit_compile)
  return lambda: compiled(images, labels)


def memory_probe(spec: dict) -> dict:
  """Builds network `spec['network']` and runs two of its `spec['step']`s at batch
  `spec['batch']` in graph mode; returns how much the peak resident memory grew from
  after the build (what `--probe` prints)."""
  settings = Settings(**{field: spec[field] for field in
                         ("model_id", "input_size", "num_classes", "san_depth")})
  model = build_network(spec["network"], settings)
  run_step = step_function(model, spec["batch"], spec["step"], False, settings)
  before = scale.reset_peak_rss()
  for _ in range(2):
    result = run_step()
  tf.nest.map_structure(lambda t: t.numpy(), result)
  return {"status": "ok", "added_bytes": scale.peak_rss_bytes() - before}


def peak_memory(settings: Settings,
                log: Callable[[str], None] = print) -> Dict[str, Dict[str, dict]]:
  """{network: {step: probe answer}}: each network's peak memory, each in a fresh
  process."""
  results = {}
  for key in settings.memory_networks or network_names(settings.model_id,
                                                      settings.san_depth):
    for step in settings.memory_steps:
      spec = dict(network=key, step=step, batch=settings.memory_batch,
                  model_id=settings.model_id, input_size=settings.input_size,
                  num_classes=settings.num_classes, san_depth=settings.san_depth)
      answer = scale.run_probe(spec, settings.memory_timeout_seconds,
                               module="benchmarks.network_level")
      results.setdefault(key, {})[step] = answer
      log(f"network memory {key} {step} batch {settings.memory_batch}: " + (
          operators.format_bytes(answer["added_bytes"]) if answer["status"] == "ok"
          else answer["status"]))
  return results


def run(settings: Settings, log: Callable[[str], None] = print) -> dict:
  """Times the networks for every batch, mode and step, and (with
  `settings.memory_batch`) measures their peak memory; returns rows, costs and
  memory."""
  memory = (peak_memory(settings, log) if settings.memory_batch is not None else None)
  models = build_networks(settings)
  network_costs = costs(models, settings)
  rows = []
  for batch in settings.batches:
    for mode in settings.modes:
      for step in settings.steps:
        jit_compile = operators.MODES[mode]
        functions = {name: step_function(model, batch, step, jit_compile, settings)
                     for name, model in models.items()}
        timings = timing.time_side_by_side(functions, settings.warmup, settings.repeats)
        factor = 1 if step == INFERENCE else operators.BACKWARD_FLOPS_FACTOR
        rows.append({
            "batch": batch, "mode": mode, "step": step,
            "timings": {name: t.to_json() for name, t in timings.items()},
            "gflops_per_second": {
                name: factor * network_costs[name]["flops"] * batch / t.median / 1e9
                for name, t in timings.items() if network_costs[name]["flops"]},
            "ratio": timing.paired_ratio(timings[GSA], timings[RESNET]),
            # Every other network against GSA-ResNet and ResNet, e.g. the paper's
            # runtime claim local_resnet/gsa_resnet (131.9 / 31.7 ms on a TPUv3).
            "ratios": {f"{name}/{base}": timing.paired_ratio(timings[name],
                                                             timings[base])
                       for base in (GSA, RESNET) for name in timings
                       if name not in (GSA, base)},
        })
        log(f"network batch {batch} {mode} {step}: " + ", ".join(
            f"{name} {t.median * 1e3:.1f} ms" for name, t in timings.items()) +
            f", ratio {rows[-1]['ratio']:.2f}")
        # Each row traces (and with XLA compiles) every network again, and a
        # training row makes optimizer slots: free them before the next row.
        del functions
        gc.collect()
  return {"model_id": settings.model_id, "input_size": settings.input_size,
          "costs": network_costs, "rows": rows, "memory_batch": settings.memory_batch,
          "memory": memory}


def main(argv=None):
  scale.probe_main(memory_probe, "network, step, batch, model_id, input_size, "
                   "num_classes, san_depth", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
  main()
