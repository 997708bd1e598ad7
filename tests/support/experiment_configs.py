"""The registered experiments and the YAML files of official_configs/, loaded the way
`gsa_keras.train` loads them (strict override: unknown keys fail), and validated."""

import pathlib
import re

from official.core import exp_factory
from official.modeling import hyperparams

from gsa_keras import registry_imports  # pylint: disable=unused-import
from tests.support import training

YAMLS = sorted((training.REPO / "official_configs").rglob("*.yaml"))
EXPERIMENTS = ("gsa_resnet_imagenet", "gsa_resnet_cifar100_finetune",
               "gsa_resnet_digits", "gsa_resnet_fashion_mnist")


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
