"""Moving trained weights between models built for different resolutions."""

from gsa_keras import ops

EMBEDDING_NAMES = ("column_embeddings", "row_embeddings")


def _short_name(variable):
  return variable.name.split("/")[-1].split(":")[0]


def transfer_weights(source, target):
  """Copies every weight of `source` into `target`, resizing relative embeddings.

  `source` and `target` are layers or models of the same architecture in the same Keras
  flavour, built, possibly for different input sizes. Global positional attention sizes
  its embedding tables by the feature size; tables that differ are interpolated with
  `gsa_keras.ops.resize_relative_embeddings`, everything else must match exactly. Use it
  to fine-tune or serve a model at another resolution than it was trained at.

  Raises:
    ValueError: if the models' weights do not correspond one to one.
  """
  sources, targets = source.weights, target.weights
  if len(sources) != len(targets):
    raise ValueError(f"`source` has {len(sources)} weights and `target` {len(targets)}: "
                     "they must be the same architecture.")
  updates = []
  for old, new in zip(sources, targets):
    name = _short_name(new)
    if _short_name(old) != name:
      raise ValueError(f"Weights do not correspond: source {old.name!r} vs target "
                       f"{new.name!r}.")
    value = old
    if tuple(old.shape) != tuple(new.shape):
      if name not in EMBEDDING_NAMES or old.shape[1:] != new.shape[1:]:
        raise ValueError(f"Weight {new.name!r} has shape {tuple(old.shape)} in `source` "
                         f"and {tuple(new.shape)} in `target`; only the rows of relative "
                         "embedding tables may differ.")
      value = ops.resize_relative_embeddings(old, new.shape[0])
    updates.append((new, value))
  for new, value in updates:
    new.assign(value)
