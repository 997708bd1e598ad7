"""Fine-tuning from a pretrained backbone (Appendix A, via `task.init_checkpoint`).

The pretrained checkpoint has the layout the Model Garden trainer writes (`model`,
`backbone`, `optimizer`, `global_step`); `init_checkpoint_modules: backbone` must
restore every backbone weight exactly and leave the new head as initialised.
"""

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory

from gsa_keras import registry_imports


def _task(num_classes=10, **task_overrides):
  params = exp_factory.get_exp_config("gsa_resnet_digits")
  # A small GSA-ResNet keeps the test quick; the mechanism is the same at 224x224.
  params.override({"task": {
      "model": {"num_classes": num_classes,
                "backbone": {"gsa_resnet": {"attention_groups": [3, 4]}}},
      **task_overrides}})
  return task_factory.get_task(params.task)


def _pretrained_checkpoint(directory):
  """A 10-class model saved the way `base_trainer.Trainer` checkpoints it."""
  model = _task().build_model()
  for variable in model.variables:  # Distinct from any fresh initialisation.
    variable.assign(tf.random.stateless_normal(variable.shape, seed=(1, 2)))
  optimizer = tf_keras.optimizers.SGD(momentum=0.9)
  checkpoint = tf.train.Checkpoint(
      global_step=tf.Variable(1000, dtype=tf.int64), model=model,
      optimizer=optimizer, **model.checkpoint_items)
  checkpoint.save(str(directory / "ckpt"))
  return model


def test_backbone_is_restored_exactly_and_head_stays_fresh(tmp_path):
  pretrained = _pretrained_checkpoint(tmp_path)
  task = _task(init_checkpoint=str(tmp_path), init_checkpoint_modules="backbone",
               num_classes=7)
  model = task.build_model()
  backbone_ids = {id(v) for v in model.backbone.variables}
  head = [v for v in model.variables if id(v) not in backbone_ids]
  head_before = [v.numpy() for v in head]
  assert head and all(v.shape[-1] == 7 for v in head if "kernel" in v.name
                      or "bias" in v.name)

  task.initialize(model)

  restored, source = model.backbone.variables, pretrained.backbone.variables
  assert len(restored) == len(source) > 100
  for mine, theirs in zip(restored, source):
    assert mine.name == theirs.name
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)
  for variable, before in zip(head, head_before):
    np.testing.assert_array_equal(variable.numpy(), before, err_msg=variable.name)


def test_all_modules_restores_the_head_too(tmp_path):
  pretrained = _pretrained_checkpoint(tmp_path)
  task = _task(init_checkpoint=str(tmp_path), init_checkpoint_modules="all")
  model = task.build_model()
  task.initialize(model)
  for mine, theirs in zip(model.variables, pretrained.variables):
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)
