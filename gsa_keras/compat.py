"""Every private API of another project that gsa_keras relies on, in one place.

Each function below reaches into TensorFlow, tf_keras or the Model Garden
(tf-models-official, which also ships orbit) where no public API does the job. Its
docstring says which installed version it was written against and which public API is
missing. Where a use turns out to have a public equivalent, it moves out of here.

When an upgrade changes what a function relies on, the function raises
`IncompatibleVersionError` naming the package, its installed version and what is
missing, instead of an `AttributeError` deep inside a run; `tests/test_compat.py`
checks each of them, one test per function, against the installed versions.
"""

import importlib.metadata
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar

# The distributions whose private APIs this module uses -> the version it was written
# against.
WRITTEN_AGAINST = {
    "tensorflow": "2.20.0",
    "tf-keras": "2.20.1",
    "tf-models-official": "2.20.0",
}

_Function = TypeVar("_Function", bound=Callable)


class IncompatibleVersionError(RuntimeError):
  """An installed package no longer has the private API a `gsa_keras.compat` function
  relies on."""


def installed_version(package: str) -> str:
  """The installed version of the distribution `package`, or 'not installed'."""
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def _incompatible(package: str, what: str) -> IncompatibleVersionError:
  """The error saying that `package`, as installed, changed `what`."""
  return IncompatibleVersionError(
      f"{package} {installed_version(package)}: {what}; gsa_keras.compat was written "
      f"against {package} {WRITTEN_AGAINST[package]}: update gsa_keras/compat.py.")


# -- tf-models-official (the Model Garden and orbit). ------------------------------------


def registered_experiments() -> List[str]:
  """The names of every experiment registered with the Model Garden's `exp_factory`.

  Written against tf-models-official 2.20.0: `official.core.exp_factory` registers
  and looks up experiments (`register_config_factory`, `get_exp_config`) but cannot
  list them; the names are the keys of its private `_REGISTERED_CONFIGS` dict.
  """
  from official.core import exp_factory
  registry = getattr(exp_factory, "_REGISTERED_CONFIGS", None)
  if not isinstance(registry, dict):
    raise _incompatible("tf-models-official",
                        "official.core.exp_factory._REGISTERED_CONFIGS (the dict of "
                        "registered experiments) is gone")
  return sorted(registry)


def yaml_loader() -> type:
  """The PyYAML loader class the Model Garden reads config files and overrides with.

  Written against tf-models-official 2.20.0: `official.modeling.hyperparams.
  params_dict` reads YAML with its private `_LOADER` (PyYAML's `FullLoader` with a
  resolver that reads `1e-4` as a number, where PyYAML reads a string); its public
  `read_yaml_to_params_dict` reads a file into a `ParamsDict` and does not give the
  loader, which `yaml.compose` needs to see the keys' lines.
  """
  from official.modeling.hyperparams import params_dict
  loader = getattr(params_dict, "_LOADER", None)
  if not isinstance(loader, type):
    raise _incompatible("tf-models-official",
                        "official.modeling.hyperparams.params_dict._LOADER (its YAML "
                        "loader class) is gone")
  return loader


def is_loss_blow_up(error: BaseException) -> bool:
  """Whether `error` is the Model Garden's end of training after too many loss blow-ups.

  Written against tf-models-official 2.20.0: `official.core.actions.RecoveryCondition`
  raises a plain `RuntimeError` once the loss has been NaN or above
  `trainer.loss_upper_bound` more than `trainer.recovery_max_trials` times; there is
  no exception type of its own. The error is recognised by where it was raised (the
  innermost frame of its traceback is `RecoveryCondition.__call__`), not by its text.
  """
  from official.core import actions
  # B004: the method itself, for its code object; not a test of whether it is callable.
  condition = getattr(getattr(actions, "RecoveryCondition", None), "__call__", None)  # noqa: B004
  code = getattr(condition, "__code__", None)
  if code is None:
    raise _incompatible("tf-models-official",
                        "official.core.actions.RecoveryCondition.__call__ (which ends "
                        "training after repeated loss blow-ups) is gone")
  if not isinstance(error, RuntimeError) or error.__traceback__ is None:
    return False
  frame = error.__traceback__
  while frame.tb_next is not None:
    frame = frame.tb_next
  return frame.tb_frame.f_code is code


def overrides(base: type) -> Callable[[_Function], _Function]:
  """Marks a method as the override of `base`'s protected hook of the same name.

  Written against tf-models-official 2.20.0: its export modules
  (`official.vision.serving.image_classification.ClassificationModule`) are extended
  by overriding protected hooks (`_decode_image`, `_crop_and_resize`), which their
  public methods call; there are no public hooks. A hook that an upgrade renames or
  removes would leave the override silently unused: this raises when the class is
  defined instead.

  Args:
    base: The class that defines the hook.

  Returns:
    A decorator that returns the method unchanged.
  """
  def check(method: _Function) -> _Function:
    if not callable(getattr(base, method.__name__, None)):
      raise _incompatible(
          "tf-models-official",
          f"{base.__module__}.{base.__qualname__} has no hook {method.__name__!r} "
          "to override")
    return method
  return check


# -- tf_keras. --------------------------------------------------------------------------


def without_keras_layer_traces():
  """A context in which `tf.saved_model.save` of a module holding a tf_keras model saves
  the model's variables but no trace of each layer's call.

  Written against tf-keras 2.20.1: the switch is the private
  `tf_keras.src.saving.legacy.saved_model.utils.keras_option_scope(save_traces=...)`;
  the public `save_traces` argument of `tf_keras.Model.save` sets it only when the
  Keras model itself is saved, not a `tf.Module` that holds one.
  """
  try:
    from tf_keras.src.saving.legacy.saved_model import utils
  except ImportError:
    utils = None
  scope = getattr(utils, "keras_option_scope", None)
  if scope is None:
    raise _incompatible("tf-keras",
                        "tf_keras.src.saving.legacy.saved_model.utils."
                        "keras_option_scope (the save_traces switch) is gone")
  return scope(save_traces=False)


def functional_layer_calls(model) -> Iterator[Tuple[object, object, object]]:
  """(layer, input shape(s), output shape(s)) of each layer call in a functional
  tf_keras model's own graph, in the order they run; the model's inputs are left out.

  Written against tf-keras 2.20.1: the model's own graph is its private
  `_nodes_by_depth` ({depth: [Node]}, deepest first in call order). The public
  `layer.inbound_nodes` also holds a layer's calls in other graphs (a layer shared by
  two models), and the model exposes no public list of its nodes.
  """
  nodes_by_depth = getattr(model, "_nodes_by_depth", None)
  if not isinstance(nodes_by_depth, dict):
    raise _incompatible("tf-keras",
                        f"the functional model {getattr(model, 'name', model)!r} has "
                        "no `_nodes_by_depth` dict (its graph's nodes by depth)")
  for depth in sorted(nodes_by_depth, reverse=True):
    for node in nodes_by_depth[depth]:
      if not node.is_input:
        yield node.layer, node.input_shapes, node.output_shapes


# -- tensorflow. ------------------------------------------------------------------------


def async_checkpoint_error(checkpoint) -> Optional[BaseException]:
  """Waits for `checkpoint`'s asynchronous writes; the error the last failed one raised
  (cleared, so that TensorFlow does not raise it again when the process exits), or None.

  Written against tensorflow 2.20.0: `tf.train.Checkpoint.sync()` waits but does not
  raise; the error stays in the private helper `_async_checkpointer_impl` until the
  next write, or until an `atexit` hook logs it, and only the helper's private
  `_check_async_thread_error()` raises (and clears) it.

  Args:
    checkpoint: A `tf.train.Checkpoint` (e.g. a `tf.train.CheckpointManager`'s
      `checkpoint`), or None.
  """
  if checkpoint is None:
    return None
  checkpoint.sync()
  if not hasattr(checkpoint, "_async_checkpointer_impl"):
    raise _incompatible("tensorflow",
                        "tf.train.Checkpoint has no `_async_checkpointer_impl` (the "
                        "helper holding the error of an asynchronous write)")
  helper = checkpoint._async_checkpointer_impl
  if helper is None:  # Never written asynchronously.
    return None
  check = getattr(helper, "_check_async_thread_error", None)
  if check is None:
    raise _incompatible("tensorflow",
                        "the asynchronous checkpoint helper has no "
                        "`_check_async_thread_error` (which raises its error)")
  try:
    check()
  except Exception as e:  # noqa: BLE001 returned to the caller, whatever its type
    return e
  return None


def checkpoint_shard_writer() -> Tuple[object, str]:
  """(module, name): the function the checkpoint saver calls to write each shard is
  `getattr(module, name)`, so that tests can make a write fail (a full disk).

  Written against tensorflow 2.20.0: `tf.train.Checkpoint` writes each shard with
  `tensorflow.python.ops.io_ops.save_v2(prefix, names, slices, tensors)`, looked up
  on that private module at every write. There is no public hook into a checkpoint's
  writes, and patching the public `tf.raw_ops.SaveV2` does not reach the saver.
  """
  try:
    from tensorflow.python.ops import io_ops
  except ImportError:
    io_ops = None
  if not callable(getattr(io_ops, "save_v2", None)):
    raise _incompatible("tensorflow",
                        "tensorflow.python.ops.io_ops.save_v2 (the checkpoint "
                        "saver's shard write) is gone")
  return io_ops, "save_v2"

