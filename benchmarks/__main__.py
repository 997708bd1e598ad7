"""`python -m benchmarks`: see `benchmarks.run`."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import run

run.main()
