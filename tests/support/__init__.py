"""Code that the tests share, imported as `from tests.support import NAME`.

- `once`: build an artefact once per test session across pytest-xdist workers.
- `shared_runs`: the training runs that slow tests share (`readme_run`, `short_run`).
- `serving`: the serving tests' shared digits export and their helpers.
- `training`: running `python -m gsa_keras.train` and reading what it wrote.
- `reference`: the loop-by-loop NumPy reference of the paper's equations.
- `keras_flavours`, `paper_costs`, and the data and config helpers of several modules.
"""
