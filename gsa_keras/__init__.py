"""gsa-keras: Global Self-Attention Networks (Shen et al.) for TensorFlow/Keras.

Layout (docs/design.md has the same map with the reasons behind it):
  gsa_keras.spec             the network as data and every argument check (Keras-free).
  gsa_keras.ops              the paper's equations (Appendix B) as TensorFlow functions,
                             Table 3's local attention baseline and SAN's pairwise and
                             patchwise self-attention (Zhao et al. 2020).
  gsa_keras.layers           Keras layers around them, for Keras 3 and tf_keras (Keras 2);
                             weight transfer between resolutions, batch-norm recalibration.
  gsa_keras.operators        the registry of spatial operators a residual group can use
                             (`attention_variant`): layer, FLOP rule, checks, paper rows.
  gsa_keras.network          GSA-ResNet's layer graph from the spec, for either Keras.
  gsa_keras.applications     keras.applications-style models (GSAResNet50, ...), and
                             loading Model Garden runs into them.
  gsa_keras.backbones        GSA-ResNet as a Model Garden backbone (`gsa_resnet`).
  gsa_keras.configs          typed configs: the backbone one-of, the experiments (ImageNet,
                             CIFAR-100, digits, Fashion-MNIST) and their validation.
  gsa_keras.tasks            the Model Garden classification task the experiments train
                             with: its inputs pass every parser field (crop_area_range).
  gsa_keras.registry_imports one import that registers everything with the Model Garden.
  gsa_keras.classifier       a Model Garden classifier from a backbone config.
  gsa_keras.flops            parameter and FLOP counts (a function and a command).
  gsa_keras.paper            the paper's numbers (Tables 2-6), plain data.
  gsa_keras.data             the built-in digits and samples, the Fashion-MNIST converter,
                             and input checks.
  gsa_keras.runs             one loader of runs: experiment config, checkpoint, model.
  gsa_keras.checkpoints      finding checkpoints, setting aside corrupt ones.
  gsa_keras.disk_space       disk space for a run: checked before training, named when full.
  gsa_keras.cli              one-line errors for the commands.
  gsa_keras.compat           the other projects' private APIs this package uses, in one
                             place (each checked against the installed versions).
  gsa_keras.train            the training entry point (Model Garden flags).
  gsa_keras.serving, .export SavedModel (three signatures, image-size checks) and TFLite
                             export.
  gsa_keras.predict          top-k classes of image files from an exported SavedModel.
  gsa_keras.visualize        heat maps of what a GSA module attends to.
"""

__version__ = "0.1.0"
