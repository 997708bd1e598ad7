"""The paper's networks (`gsa_keras.paper`) built and counted, once per process."""

import functools

import tf_keras

from gsa_keras import flops
from gsa_keras import paper
from gsa_keras.configs import backbones as configs

# The paper's networks with parameters and FLOPs (Tables 2, 3, 6), for 1000 classes
# and 224x224 inputs: parameters in millions, FLOPs in billions with multiplications
# and additions counted separately (Section 4).
PAPER = {network.name: network for network in paper.with_params_and_flops()}


@functools.lru_cache(maxsize=None)
def model_cost(name):
  """The named network's `flops.count_params_and_flops` at 224x224, 1000 classes."""
  config = configs.GSAResNet(**PAPER[name].config_fields())
  cost = flops.count_params_and_flops(config, 224, 1000)
  tf_keras.backend.clear_session()
  return cost
