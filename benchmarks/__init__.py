"""The GSA benchmark suite: module, network and scale comparisons, with a report.

`python -m benchmarks [--quick] [--out DIR]` runs it (see `benchmarks.run`):

- `module_level`: GSA vs Conv2D 3x3 vs dense attention at ResNet-50's stage shapes.
- `network_level`: GSA-ResNet-50 vs the Model Garden's ResNet-50.
- `scale`: one module from small to large images, each size in a fresh process.
- `report`: the Markdown table and PNG plots.

Every comparison goes through `timing.time_side_by_side`.
"""
