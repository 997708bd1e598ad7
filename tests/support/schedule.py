"""Which tests a session runs, and in what order the xdist workers get them.

Which: the end-to-end tests marked `slow` (each a minute or more: training runs, exports,
the benchmarks' and studies' quick modes) run in CI, where `CI` is set (CI services set
`CI=true`; `.ci/run` sets it where they have not), or when asked for with `--run-slow` or
any `-m` expression; a plain `pytest` leaves them out, so that the suite stays well under 20
minutes on a 2-core machine.

Order: pytest-xdist's `worksteal` scheduler gives each of the K workers a contiguous K-th
of the collected tests (by count), and a worker that runs out takes the back half of
another's queue. So the order is K segments of equal length, one per worker, each
starting with its longest work, balanced by an estimated cost. The tests are placed in
chunks that stay together:

- all the tests that read one shared artefact (`SHARED_ARTEFACT_SECONDS`; built once by
  `tests/support/once.py`): one worker builds it and then runs its readers, instead of
  the other worker waiting minutes for it;
- the other slow tests alone, except those that use a module fixture (such as the
  study's quick run): those of one module together, so that it is made once, not once
  per worker;
- the remaining tests of a module together, in their order (their module fixtures are
  made once).

The artefact and slow chunks go to segments longest first, each to the segment with the
least estimated cost so far (the longest-processing-time rule); then the modules' tests
fill the segments to equal length, each module to the cheapest segment with room (one
that does not fit is split). The estimates are rough on purpose: stealing
evens out what they get wrong, and they only decide the order, never the outcome.
"""

import os

# Seconds to build each shared artefact, measured in a CI run (2 workers on 2 cores,
# `pytest --durations=0`): the README run 506 s, the serving export 35-41 s, the short
# run 31 s, the TFLite conversion about 20 s.
SHARED_ARTEFACT_SECONDS = {"readme_run": 500.0, "serving_export": 40.0,
                           "short_run": 30.0, "serving_tflite": 20.0}
SLOW_TEST_SECONDS = 60.0  # The slow tests take 10-500 s; most of them 20-100 s.
TEST_SECONDS = 1.0  # Most other tests take well under a second, a few up to 20 s.


def runs_slow_tests(run_slow_option: bool, markexpr: str, environ=os.environ) -> bool:
  """Whether a session runs the tests marked `slow`: in CI (`CI` set to anything but
  empty, "0" or "false"), with `--run-slow`, or when `-m` selects by marks itself."""
  in_ci = environ.get("CI", "").strip().lower() not in ("", "0", "false")
  return run_slow_option or in_ci or bool(markexpr)


def _is_slow(item) -> bool:
  return item.get_closest_marker("slow") is not None


def _uses_a_module_fixture(item) -> bool:
  """Whether `item` uses a module- or class-scoped fixture (pytest's `_fixtureinfo`, a
  private attribute pytest has kept for years; without it, False)."""
  info = getattr(item, "_fixtureinfo", None)
  definitions = getattr(info, "name2fixturedefs", {}) or {}
  return any(chain and chain[-1].scope in ("module", "class")
             for chain in definitions.values())


def _chunk_key(item):
  for artefact in SHARED_ARTEFACT_SECONDS:
    if artefact in getattr(item, "fixturenames", ()):
      return ("artefact", artefact)
  module = item.nodeid.split("::", 1)[0]
  if not _is_slow(item):
    return ("module", module)
  return ("slow", module) if _uses_a_module_fixture(item) else ("slow", item.nodeid)


def _chunk_cost(key, items) -> float:
  cost = sum(SLOW_TEST_SECONDS if _is_slow(item) else TEST_SECONDS for item in items)
  if key[0] == "artefact":
    cost += SHARED_ARTEFACT_SECONDS[key[1]]
  return cost


def worksteal_order(items, workers: int) -> list:
  """`items` in `workers` contiguous segments of equal length (worksteal splits the
  collection by count), balanced by estimated cost, each with its longest chunks first
  (see the module doc). Deterministic: every worker collects the same order, as xdist
  requires."""
  chunks = {}
  for item in items:
    chunks.setdefault(_chunk_key(item), []).append(item)
  costs = {key: _chunk_cost(key, chunk) for key, chunk in chunks.items()}
  heavy = sorted((key for key in chunks if key[0] != "module"), key=lambda key: -costs[key])
  workers = max(1, min(workers, len(items)))
  segments = [[] for _ in range(workers)]
  loads = [0.0] * workers
  # The long work first, by the longest-processing-time rule...
  for key in heavy:
    lightest = loads.index(min(loads))
    segments[lightest].extend(chunks[key])
    loads[lightest] += costs[key]
  # ...then the modules' fast tests, in their order, to the segment with the least cost
  # that still has room; a module that does not fit is split at the room's end.
  room = [len(items) // workers + (index < len(items) % workers) - len(segment)
          for index, segment in enumerate(segments)]
  fast = [item for key in chunks if key[0] == "module" for item in chunks[key]]
  while fast:
    open_segments = [index for index in range(workers) if room[index] > 0]
    if not open_segments:  # The heavy chunks alone overfill a segment.
      segments[loads.index(min(loads))].extend(fast)
      break
    target = min(open_segments, key=lambda index: loads[index])
    module = fast[0].nodeid.split("::", 1)[0]
    length = next((index for index, item in enumerate(fast)
                   if item.nodeid.split("::", 1)[0] != module), len(fast))
    taken, fast = fast[:min(length, room[target])], fast[min(length, room[target]):]
    segments[target].extend(taken)
    room[target] -= len(taken)
    loads[target] += len(taken) * TEST_SECONDS
  return [item for segment in segments for item in segment]


def worker_count(environ=os.environ) -> int:
  """The number of xdist workers in this session (1 without xdist)."""
  return int(environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
