"""gsa-keras: Global Self-Attention Networks (Shen et al.) for TensorFlow/Keras.

Layout:
  gsa_keras.ops        the paper's equations (Appendix B) as plain TensorFlow functions.
  gsa_keras.layers     Keras layers around them, for Keras 3 and for tf_keras (Keras 2).
"""

__version__ = "0.1.0"
