"""The paper's numbers for the networks this package builds: Tables 2-6, as plain data.

Shen, Bello, Vemulapalli, Jia, Chen, "Global Self-Attention Networks for Image
Recognition". Each `Network` is one network of the paper with every number the paper
gives for it, across its tables (a network appears in several: GSA-ResNet-50 is row 1
of Tables 2, 4 and 5, "This work" of Table 3 and a column of Table 6), and the
`gsa_keras.spec.Architecture` fields that build it. The operator registry
(`gsa_keras.operators`) lists, per operator, the networks here that it reproduces.

Units, as in the paper: ImageNet top-1 and top-5 accuracy and CIFAR-100 top-1 in
percent; parameters in millions and FLOPs in billions for 1000 classes and 224x224
inputs, multiplications and additions counted separately (Section 4); runtime in
milliseconds, single-image inference on a TPUv3. `None` where the paper gives no
number. Of Table 3's other methods, Ramachandran et al.'s local self-attention
ResNet-50 is in `NETWORKS` (`attention_variant='local'`) and Zhao et al.'s SAN19 is
`SAN19_PATCHWISE` (`gsa_keras.san_network`); the others (Chen et al., Bello et al.,
...) are not here: this package does not build them.

Our copy of Table 4 is garbled in its last rows: the content-only top-1 is printed
as 70.2, but Section 4.4.1 says content-only attention drops 7.7 points from 78.5,
so it is 70.8; the row-only top-5 is read as 90.0 and the content-only top-5 as 89.5.

This module imports nothing from Keras or TensorFlow: the FLOP counter
(`gsa_keras.flops --paper`), the tests and the benchmarks all read it.
"""

import dataclasses
import types
from typing import Mapping, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Network:
  """One network of the paper and its numbers (see the module docstring for units)."""
  name: str
  description: str  # Where the paper has it: table and row.
  backbone: Mapping  # `Architecture` (and `GSAResNet` config) fields that build it.
  top1: float
  top5: Optional[float] = None
  params_m: Optional[float] = None
  gflops: Optional[float] = None
  runtime_ms: Optional[float] = None
  cifar100_top1: Optional[float] = None

  def config_fields(self) -> dict:
    """`backbone` as keyword arguments of a config (sequences as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in self.backbone.items()}


def _fields(**fields) -> Mapping:
  return types.MappingProxyType(fields)


_CONV = dict(attention_groups=())

NETWORKS: Tuple[Network, ...] = (
    # Table 6: convolution vs GSA at three depths (ImageNet and CIFAR-100).
    Network("ResNet-38", "Table 6, ResNet-38 structure, convolution",
            _fields(model_id=38, **_CONV), top1=75.9, top5=92.9, params_m=19.6,
            gflops=6.4, runtime_ms=17.2, cifar100_top1=80.8),
    Network("GSA-ResNet-38", "Table 6, ResNet-38 structure, GSA",
            _fields(model_id=38), top1=77.8, top5=93.6, params_m=14.2, gflops=5.9,
            runtime_ms=24.7, cifar100_top1=83.3),
    Network("ResNet-50", "Table 6, ResNet-50 structure, convolution (= Table 5 "
            "'ResNet-50 CNN')", _fields(model_id=50, **_CONV), top1=76.9, top5=93.5,
            params_m=25.6, gflops=8.2, runtime_ms=22.6, cifar100_top1=81.2),
    Network("GSA-ResNet-50", "Table 6, ResNet-50 structure, GSA (= Table 2 row 1, "
            "Table 3 'This work' ResNet-50, Table 4 row 1, Table 5 row 1)",
            _fields(model_id=50), top1=78.5, top5=93.9, params_m=18.1, gflops=7.2,
            runtime_ms=31.7, cifar100_top1=83.9),
    Network("ResNet-101", "Table 6, ResNet-101 structure, convolution (= Table 5 "
            "'ResNet-101 CNN')", _fields(model_id=101, **_CONV), top1=78.7, top5=94.4,
            params_m=44.5, gflops=15.6, runtime_ms=39.3, cifar100_top1=82.8),
    Network("GSA-ResNet-101", "Table 6, ResNet-101 structure, GSA (= Table 3 'This "
            "work' ResNet-101)", _fields(model_id=101), top1=79.6, top5=94.5,
            params_m=30.4, gflops=12.2, runtime_ms=57.2, cifar100_top1=84.4),
    # Table 3: the M-ResNet-50 structure.
    Network("GSA-M-ResNet-50", "Table 3, 'This work' M-ResNet-50",
            _fields(model_id=50, width_variant="m_resnet"), top1=78.2, top5=93.9,
            params_m=12.7, gflops=6.0, runtime_ms=31.1),
    # Table 3: local self-attention (Ramachandran et al. 2019), the paper's runtime foil.
    Network("Local-ResNet-50", "Table 3, Ramachandran et al. (2019) ResNet-50: "
            "stand-alone local self-attention, 7x7 neighbourhoods",
            _fields(model_id=50, attention_variant="local"), top1=77.6, params_m=18.0,
            gflops=7.0, runtime_ms=131.9),
    # Table 2: GSA vs axial attention, in ResNet-50.
    Network("Axial-ResNet-50", "Table 2 row 2, axial content and positional attention",
            _fields(model_id=50, attention_variant="axial"), top1=77.5, top5=93.6,
            params_m=18.1, gflops=7.3, runtime_ms=32.5),
    Network("Positional-ResNet-50", "Table 2 row 3, only axial positional attention "
            "(= Table 4 row 2, column + row)",
            _fields(model_id=50, attention_variant="positional"), top1=77.4, top5=93.5,
            params_m=16.8, gflops=6.4, runtime_ms=28.2),
    # Table 4: the GSA module's components, in ResNet-50.
    Network("Content-Column-ResNet-50", "Table 4 row 3, content + column",
            _fields(model_id=50, attention_variant="content_column"), top1=76.2,
            top5=92.7),
    Network("Content-Row-ResNet-50", "Table 4 row 4, content + row",
            _fields(model_id=50, attention_variant="content_row"), top1=75.4, top5=92.2),
    Network("Column-ResNet-50", "Table 4 row 5, column only",
            _fields(model_id=50, attention_variant="column"), top1=72.6, top5=90.8),
    Network("Row-ResNet-50", "Table 4 row 6, row only",
            _fields(model_id=50, attention_variant="row"), top1=70.2, top5=90.0),
    Network("Content-ResNet-50", "Table 4 row 7, content only (top-1 from Section "
            "4.4.1's '7.7% drop')", _fields(model_id=50, attention_variant="content"),
            top1=70.8, top5=89.5),
    # Table 5: GSA modules in some residual groups of ResNet-50 only.
    Network("GSA-ResNet-50, groups 2-4", "Table 5 row 2",
            _fields(model_id=50, attention_groups=(2, 3, 4)), top1=78.7, top5=94.1,
            runtime_ms=28.5),
    Network("GSA-ResNet-50, groups 3-4", "Table 5 row 3",
            _fields(model_id=50, attention_groups=(3, 4)), top1=78.5, top5=94.1,
            runtime_ms=24.5),
    Network("GSA-ResNet-50, group 4", "Table 5 row 4",
            _fields(model_id=50, attention_groups=(4,)), top1=77.7, top5=93.7,
            runtime_ms=23.2),
)

# Table 3's row for Zhao et al. (2020): SAN19 with patchwise self-attention, built by
# `gsa_keras.san_network` (not a GSA-ResNet, so not in `NETWORKS`; `backbone` holds the
# Model Garden's `backbone.san` fields). The paper counts 6.6G FLOPs, twice SAN's own
# 3.3G multiply-adds.
SAN19_PATCHWISE = Network(
    "SAN19-patchwise", "Table 3, Zhao et al. (2020): SAN19, patchwise self-attention",
    _fields(depth=19, operator="patchwise"), top1=78.2, top5=93.9, params_m=20.5,
    gflops=6.6)

BY_NAME: Mapping[str, Network] = types.MappingProxyType(
    {network.name: network for network in NETWORKS})


def network(name: str) -> Network:
  """The paper's network called `name`; a `KeyError` lists the names."""
  try:
    return BY_NAME[name]
  except KeyError:
    raise KeyError(f"No network {name!r} in the paper's tables; "
                   f"known: {', '.join(BY_NAME)}.") from None


def with_params_and_flops() -> Tuple[Network, ...]:
  """The networks whose parameters and FLOPs the paper gives (Tables 2, 3 and 6)."""
  return tuple(n for n in NETWORKS if n.params_m is not None)
