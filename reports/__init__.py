"""What the benchmark and study reports share, in the standard library only.

- `machine`: the description of the machine a measurement ran on.
- `tables`: Markdown tables.

Neither module imports TensorFlow, the Model Garden's registry or the rest of the
repository: `benchmarks` and `studies` both import them, and never each other.
"""
