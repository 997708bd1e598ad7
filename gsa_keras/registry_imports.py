"""One import that registers everything gsa_keras adds to the Model Garden.

Entry points (`train.py`, ...) import this module, then use the Model Garden's factories:
`backbone.type: gsa_resnet` is a backbone, the experiments are `exp_factory` names.
"""

# ruff: noqa: F401 - every import here is made for what importing it registers.
# Model Garden's own registrations (backbones, tasks, experiments).
from official.vision import registry_imports as _vision_registry_imports

# Backbones: `gsa_resnet`.
from gsa_keras import backbones

# The task that trains the experiments (`task_factory`): the Model Garden's image
# classification task with inputs that honour every data field.
from gsa_keras.tasks import image_classification

# Experiments: their `exp_factory` configs (one import per experiments module).
from gsa_keras.configs import experiments
from gsa_keras.configs import fashion_mnist
