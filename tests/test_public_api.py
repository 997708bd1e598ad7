"""The public layers are real classes that IDEs, `inspect`, `help()` and grep can read.

Each public layer is a `class` statement in its flavour module (`gsa_keras.layers.keras3`,
`gsa_keras.layers.tf_keras`), its constructor names every option with a documented
`Args` entry, and both flavours register it under the same `gsa_keras>ClassName`.
"""

import inspect
import pathlib
import pydoc
import re

import pytest

from tests.support import keras_flavours

_AXIAL_OPTIONS = ("num_heads", "key_channels", "max_relative_shift", "spatial_size",
                  "kernel_initializer", "kernel_regularizer", "norm_momentum",
                  "norm_epsilon", "use_sync_bn")

_SAN_OPTIONS = ("kernel_size", "share_planes", "relation_reduction", "kernel_initializer",
                "kernel_regularizer", "norm_momentum", "norm_epsilon", "use_sync_bn")

# Public layer -> its options after `filters`, in signature order.
OPTIONS = {
    "GlobalSelfAttention": _AXIAL_OPTIONS[:4] + ("use_content", "use_column", "use_row")
                           + _AXIAL_OPTIONS[4:] + ("query_normalization",),
    "AxialContentPositionalAttention": _AXIAL_OPTIONS,
    "LocalSelfAttention": ("num_heads", "kernel_size", "key_channels", "kernel_initializer",
                           "kernel_regularizer"),
    "PairwiseSelfAttention": _SAN_OPTIONS,
    "PatchwiseSelfAttention": _SAN_OPTIONS,
}
# The arguments a layer of each kind is made with in the config test (SAN's layers have
# no heads).
_CONFIG_TEST_ARGUMENTS = {name: dict(num_heads=2) for name in OPTIONS}
_CONFIG_TEST_ARGUMENTS.update(PairwiseSelfAttention={}, PatchwiseSelfAttention={})

_CASES = [(flavour, name) for flavour in sorted(keras_flavours.FLAVOURS) for name in OPTIONS]


def _layer_class(flavour, name):
  return getattr(keras_flavours.FLAVOURS[flavour][1], name)


@pytest.mark.parametrize("flavour,name", _CASES)
def test_signature_names_every_option(flavour, name):
  parameters = inspect.signature(_layer_class(flavour, name)).parameters
  assert list(parameters) == ["filters", *OPTIONS[name], "kwargs"]
  kinds = [parameter.kind for parameter in parameters.values()]
  assert kinds == ([inspect.Parameter.POSITIONAL_OR_KEYWORD]
                   + [inspect.Parameter.KEYWORD_ONLY] * len(OPTIONS[name])
                   + [inspect.Parameter.VAR_KEYWORD])
  assert all(parameters[option].default is not inspect.Parameter.empty
             for option in OPTIONS[name])


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_both_flavours_have_the_same_signature(name):
  signatures = {str(inspect.signature(_layer_class(flavour, name)))
                for flavour in keras_flavours.FLAVOURS}
  assert len(signatures) == 1, signatures


@pytest.mark.parametrize("flavour,name", _CASES)
def test_every_option_is_in_the_config(flavour, name):
  """What the signature names is what `get_config` saves and `from_config` restores."""
  layer = _layer_class(flavour, name)(8, **_CONFIG_TEST_ARGUMENTS[name])
  assert set(OPTIONS[name]) | {"filters"} <= set(layer.get_config())


def test_options_after_filters_are_keyword_only(flavour):
  _, layers = flavour
  with pytest.raises(TypeError):
    layers.GlobalSelfAttention(8, 2)


@pytest.mark.parametrize("flavour,name", _CASES)
def test_help_documents_every_argument(flavour, name):
  text = pydoc.render_doc(_layer_class(flavour, name), renderer=pydoc.plaintext)
  assert f"class {name}(" in text
  for argument in ("filters",) + OPTIONS[name] + ("**kwargs",):
    entry = re.search(rf"\n[ |]*{re.escape(argument)}: (\S.*)", text)
    assert entry, f"help({name}) has no `{argument}:` entry"
    assert len(entry.group(1)) > 10, entry.group(0)


@pytest.mark.parametrize("flavour,name", _CASES)
def test_each_public_name_is_a_class_statement_in_its_module(flavour, name):
  module = keras_flavours.FLAVOURS[flavour][1]
  layer_class = getattr(module, name)
  assert layer_class.__module__ == module.__name__
  assert layer_class.__qualname__ == name
  source = pathlib.Path(module.__file__).read_text()
  assert re.search(rf"^class {name}\(", source, re.MULTILINE), module.__file__
  assert re.search(rf"^class {name}\(", inspect.getsource(layer_class), re.MULTILINE)
  assert layer_class.__doc__ and layer_class.__doc__ in source
  assert name in module.__all__


@pytest.mark.parametrize("flavour,name", _CASES)
def test_both_flavours_register_the_same_name(flavour, name):
  keras, _ = keras_flavours.FLAVOURS[flavour]
  layer_class = _layer_class(flavour, name)
  assert issubclass(layer_class, keras.layers.Layer)
  assert keras.saving.get_registered_name(layer_class) == f"gsa_keras>{name}"
  assert keras.saving.get_registered_object(f"gsa_keras>{name}") is layer_class
