"""Named variants of the attention module: the rows of the paper's Tables 2 and 4.

Keras-free, so configs and backbones can validate a variant name without building a layer.
"""

import types

# Which terms of the GSA module are on (Table 4). `AXIAL_BASELINE` is Table 2's
# "axial content and positional attention", a different layer rather than a flag set.
GSA_VARIANTS = types.MappingProxyType({
    "gsa": dict(use_content=True, use_column=True, use_row=True),
    "positional": dict(use_content=False, use_column=True, use_row=True),
    "content_column": dict(use_content=True, use_column=True, use_row=False),
    "content_row": dict(use_content=True, use_column=False, use_row=True),
    "column": dict(use_content=False, use_column=True, use_row=False),
    "row": dict(use_content=False, use_column=False, use_row=True),
    "content": dict(use_content=True, use_column=False, use_row=False),
})
AXIAL_BASELINE = "axial"
ATTENTION_VARIANTS = tuple(GSA_VARIANTS) + (AXIAL_BASELINE,)


def check_variant(name, argument="attention_variant"):
  """Raises ValueError unless `name` is one of `ATTENTION_VARIANTS`."""
  if name not in ATTENTION_VARIANTS:
    raise ValueError(
        f"`{argument}` must be one of {list(ATTENTION_VARIANTS)}, got {name!r}.")
  return name
