"""The registered experiments and the YAML files of official_configs/, loaded the way
`gsa_keras.train` loads them (strict override: unknown keys fail), and validated.

A YAML holds only what differs from its experiment's defaults: `overrides` lists each
leaf key of a file, whether its value is the registered default, and the reason the
file gives for repeating it (`REPEATS_DEFAULT`).
"""

import copy
import dataclasses
import functools
import pathlib
import re
from typing import Any, Iterator, List, Optional, Tuple

import yaml

from official.core import exp_factory
from official.modeling import hyperparams

from gsa_keras import compat
from gsa_keras import registry_imports
from tests.support import training

YAMLS = sorted((training.REPO / "official_configs").rglob("*.yaml"))
EXPERIMENTS = ("gsa_resnet_imagenet", "gsa_resnet_cifar100_finetune",
               "gsa_resnet_digits", "gsa_resnet_fashion_mnist", "san_imagenet")
# The comment that lets a YAML key repeat its experiment's default, followed by the
# reason: on the key's line or on the comment lines right above it. On a mapping key
# it covers every key below.
REPEATS_DEFAULT = "# repeats the default:"
# The Model Garden's YAML loader (`hyperparams.override_params_dict` reads files with
# it): it reads `1e-4` as a number, where PyYAML's own loaders read a string.
_LOADER = compat.yaml_loader()


def header(path: pathlib.Path) -> dict:
  """The `# Key: value` lines at the top of a YAML file."""
  fields = {}
  for line in path.read_text().splitlines():
    match = re.match(r"# (\w+): (.*)", line)
    if match:
      fields.setdefault(match.group(1), match.group(2).strip())
  return fields


def load(path: pathlib.Path):
  """The YAML's experiment config (the experiment its header names), validated."""
  params = exp_factory.get_exp_config(header(path)["Experiment"])
  params = hyperparams.override_params_dict(params, str(path), is_strict=True)
  params.validate()
  return params


@dataclasses.dataclass(frozen=True)
class Override:
  """One leaf key of a YAML file (a value that is not a mapping).

  Attributes:
    key: Its dotted path, e.g. 'task.model.backbone.gsa_resnet.model_id'.
    value: Its value as the Model Garden reads it.
    line: Its line in the file (from 1).
    repeats_default: Whether setting it alone leaves the experiment's config as it was.
    reason: The reason of a `REPEATS_DEFAULT` comment on it or on a mapping above it;
      '' for a comment without one, None without a comment.
  """
  key: str
  value: Any
  line: int
  repeats_default: bool
  reason: Optional[str]


def _marker_reason(lines: List[str], index: int) -> Optional[str]:
  """The reason of the `REPEATS_DEFAULT` comment on line `index` or right above it."""
  candidates = [lines[index]]
  above = index - 1
  while above >= 0 and lines[above].lstrip().startswith("#"):
    candidates.append(lines[above])
    above -= 1
  for line in candidates:
    position = line.find(REPEATS_DEFAULT)
    if position >= 0:
      return line[position + len(REPEATS_DEFAULT):].strip()
  return None


def _leaves(node, lines: List[str], path: Tuple[str, ...] = (),
            reason: Optional[str] = None
            ) -> Iterator[Tuple[Tuple[str, ...], int, Optional[str]]]:
  """(key path, line index, marker reason) of every leaf under a mapping node."""
  for key_node, value_node in node.value:
    index = key_node.start_mark.line
    own = _marker_reason(lines, index)
    inherited = own if own is not None else reason
    key = path + (key_node.value,)
    if isinstance(value_node, yaml.MappingNode):
      yield from _leaves(value_node, lines, key, inherited)
    else:
      yield key, index, inherited


def _nested(key: Tuple[str, ...], value: Any) -> dict:
  for part in reversed(key):
    value = {part: value}
  return value


@functools.lru_cache(maxsize=None)
def _default(experiment: str):
  """The registered experiment's config; callers change only copies of it."""
  return exp_factory.get_exp_config(experiment)


def _plain(value: Any) -> Any:
  """`value` with tuples as lists: a YAML list sets a tuple default to a list."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def overrides(path: pathlib.Path, experiment: Optional[str] = None) -> List[Override]:
  """Every leaf key of the YAML at `path`, compared with the registered experiment.

  Args:
    path: A YAML file overriding an experiment.
    experiment: The experiment; default: the one the file's header names.

  Returns:
    The file's leaf keys in order. A key repeats the default if overriding the
    experiment's config with it alone changes nothing (`as_dict()` is equal, tuples
    read as lists), so `[0.08, 1]` repeats `(0.08, 1.0)` and `0.0001` repeats `1e-4`.
  """
  text = path.read_text()
  root = yaml.compose(text, Loader=_LOADER)
  if root is None:
    return []
  data = yaml.load(text, Loader=_LOADER)
  default = _default(experiment or header(path)["Experiment"])
  reference = _plain(default.as_dict())
  lines = text.splitlines()
  result = []
  for key, index, reason in _leaves(root, lines):
    value = data
    for part in key:
      value = value[part]
    params = copy.deepcopy(default)
    params.override(_nested(key, value), is_strict=True)
    result.append(Override(key=".".join(key), value=value, line=index + 1,
                           repeats_default=_plain(params.as_dict()) == reference,
                           reason=reason))
  return result


def override_problems(path: pathlib.Path, experiment: Optional[str] = None
                      ) -> List[str]:
  """What is wrong with the keys of a YAML: each key that repeats the default without
  a reason, and each `REPEATS_DEFAULT` comment on a key that does not repeat it."""
  problems = []
  for item in overrides(path, experiment):
    where = f"{path.name}:{item.line}: {item.key}: {item.value!r}"
    if item.repeats_default and not item.reason:
      problems.append(
          f"{where} is the experiment's default: delete it, or say why the file "
          f"repeats it with '{REPEATS_DEFAULT} <reason>'"
          + (" (the comment has no reason)" if item.reason == "" else ""))
    elif item.reason is not None and not item.repeats_default:
      problems.append(f"{where} says '{REPEATS_DEFAULT}' but is not the default")
  return problems
