"""gsa-keras: Global Self-Attention Networks (Shen et al.) for TensorFlow/Keras.

Layout:
  gsa_keras.ops              the paper's equations (Appendix B) as TensorFlow functions.
  gsa_keras.layers           Keras layers around them, for Keras 3 and tf_keras (Keras 2).
  gsa_keras.backbones        GSA-ResNet as a Model Garden backbone (`gsa_resnet`).
  gsa_keras.configs          typed configs: the backbone one-of and the experiments.
  gsa_keras.flops            parameter and FLOP counts (a function and a command).
  gsa_keras.registry_imports one import that registers everything with the Model Garden.
"""

__version__ = "0.1.0"
