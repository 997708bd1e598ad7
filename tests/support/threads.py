"""Each pytest-xdist worker's share of the cores, for TensorFlow.

TensorFlow sizes its thread pools to every core of the machine. With one xdist worker
per core, two workers that train at the same time then run twice as many busy threads
as there are cores, and each waits for threads that the other's work has descheduled:
on the 2-core machine the README's Keras fit took 162 s alone and 525 s beside the
README run. Giving each worker (and the subprocesses it starts, which inherit its
environment) `cores // workers` threads per pool keeps the machine's threads at its
core count.
"""

import os

# TensorFlow's own environment variables for the sizes of its two thread pools.
POOL_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cores() -> int:
  """The cores this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
      os.cpu_count() or 1)


def share(workers: int, available: int) -> int:
  """Threads per pool for one of `workers` processes sharing `available` cores."""
  return max(1, available // max(1, workers))


def limit_to_worker_share(environ=os.environ) -> None:
  """In an xdist worker, sets TensorFlow's pool sizes to this worker's share of the
  cores, unless the caller set them. Call before TensorFlow is imported."""
  workers = environ.get("PYTEST_XDIST_WORKER_COUNT")
  if not workers:
    return
  for variable in POOL_VARIABLES:
    environ.setdefault(variable, str(share(int(workers), cores())))
