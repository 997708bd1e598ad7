"""Serving under concurrent load: requests/s and latency, one thread beside eight.

  python -m benchmarks.serving_load --saved_model=/tmp/gsa_digits_export \
      --out benchmark_results                     # 4 rounds of 2 x 15 s
  python -m benchmarks.serving_load --saved_model=DIR --quick --out /tmp/load
  python -m benchmarks.serving_load --saved_model=/tmp/gsa_digits_export \
      --soak_seconds=600 --out benchmark_results  # The soak: 10 minutes, 8 clients

Loads an exported classifier (`gsa_keras.export`) and calls its signatures the way
clients would, from one thread and from `--threads` threads, in alternating rounds (so
a change of machine load during the run affects both alike). The requests mix valid
ones (`serving_default`, `image_bytes`, `tf_example`, one image each) with bad ones: a
wrong shape, corrupt bytes, an oversize header, an empty batch. Every valid answer is
compared with the single-threaded answer for the same request, and every bad request
must fail with its own message. Writes `serving_load.json` and `serving_load.md` into
`--out`, with the load average at the start and the end: other processes skew the
figures.

`--soak_seconds` runs the soak instead (`soak`): `--threads` clients send the same mix
without pause for that long, and each interval (`--soak_interval`, a minute) records
p50/p99 latency, requests per kind of outcome and the process's resident memory. It
writes `serving_soak.json` and `serving_soak.md` with its verdicts (`soak_checks`):
no failed valid request, every invalid one refused with its message, memory flat after
the first interval's warm-up, latency stable; the exit status is 1 if one fails.
"""

import argparse
import dataclasses
import datetime
import json
import os
import pathlib
import collections
import platform
import struct
import sys
import threading
import time
import zlib
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

RESULTS_JSON = "serving_load.json"
REPORT_MD = "serving_load.md"
SOAK_JSON = "serving_soak.json"
SOAK_MD = "serving_soak.md"
# The soak's verdicts compare the last interval with the second (the first warms up):
# resident memory within this fraction, p99 latency within this factor.
SOAK_MEMORY_TOLERANCE = 0.05
SOAK_LATENCY_FACTOR = 1.5
ATOL = 1e-5  # Valid answers under load must equal the single-threaded ones.


@dataclasses.dataclass(frozen=True)
class Request:
  """One request: a signature, its input, and the error it must get (or None)."""
  name: str
  signature: str
  make_inputs: Callable[[], tf.Tensor]
  error: Optional[str] = None


def _png_header(width: int, height: int) -> bytes:
  """A PNG's signature and IHDR chunk declaring width x height (no pixel data)."""
  data = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  chunk = (struct.pack(">I", len(data)) + b"IHDR" + data
           + struct.pack(">I", zlib.crc32(b"IHDR" + data)))
  return b"\x89PNG\r\n\x1a\n" + chunk


def _example(encoded: bytes) -> bytes:
  feature = {"image/encoded": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[encoded]))}
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


def requests(input_size: int = 32, valid_images: int = 4, seed: int = 0
             ) -> List[Request]:
  """The request mix: each valid image through the three signatures, four bad ones."""
  rng = np.random.default_rng(seed)
  out = []
  for index in range(valid_images):
    image = rng.integers(0, 256, (input_size, input_size, 3), dtype=np.uint8)
    png = tf.io.encode_png(image).numpy()
    out += [
        Request(f"tensor_{index}", "serving_default",
                lambda image=image: tf.constant(image[None])),
        Request(f"png_{index}", "image_bytes", lambda png=png: tf.constant([png])),
        Request(f"example_{index}", "tf_example",
                lambda png=png: tf.constant([_example(png)])),
    ]
  png = tf.io.encode_png(np.zeros((input_size, input_size, 3), np.uint8)).numpy()
  out += [
      Request("wrong_shape", "serving_default",
              lambda: tf.zeros([input_size, input_size, 3], tf.uint8),
              "is not compatible with expected shape [?,?,?,3]"),
      Request("corrupt_bytes", "image_bytes",
              lambda: tf.constant([png[:len(png) // 2]]), "Invalid PNG data"),
      Request("oversize_header", "image_bytes",
              lambda: tf.constant([_png_header(16000, 16000)]),
              "Image too large: inputs[0] is a PNG of 16000x16000 = 256000000 pixels"),
      Request("empty_batch", "serving_default",
              lambda: tf.zeros([0, input_size, input_size, 3], tf.uint8),
              "`inputs` is an empty batch"),
  ]
  return out


def reference_answers(model, mix: Sequence[Request]) -> Dict[str, np.ndarray]:
  """The single-threaded logits of every valid request."""
  return {request.name: model.signatures[request.signature](
      inputs=request.make_inputs())["logits"].numpy()
          for request in mix if request.error is None}


@dataclasses.dataclass
class LoadResult:
  """What `run_load` saw."""
  threads: int
  seconds: float = 0.0
  latencies: List[float] = dataclasses.field(default_factory=list)  # Valid requests.
  valid: int = 0
  rejected: int = 0  # Bad requests that got their message.
  mismatches: List[str] = dataclasses.field(default_factory=list)
  unexpected: List[str] = dataclasses.field(default_factory=list)
  max_difference: float = 0.0

  @property
  def requests(self) -> int:
    return self.valid + self.rejected + len(self.unexpected)

  def summary(self) -> dict:
    """JSON-able figures: requests/s, latency percentiles (ms), errors."""
    latencies = np.array(self.latencies) * 1e3 if self.latencies else np.zeros([1])
    return {
        "threads": self.threads, "seconds": self.seconds, "requests": self.requests,
        "valid": self.valid, "rejected_as_expected": self.rejected,
        "mismatches": len(self.mismatches), "unexpected_errors": len(self.unexpected),
        "max_abs_difference": self.max_difference,
        "requests_per_second": self.requests / max(self.seconds, 1e-9),
        "valid_per_second": self.valid / max(self.seconds, 1e-9),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }

  def merge(self, other: "LoadResult") -> None:
    self.seconds += other.seconds
    self.latencies += other.latencies
    self.valid += other.valid
    self.rejected += other.rejected
    self.mismatches += other.mismatches
    self.unexpected += other.unexpected
    self.max_difference = max(self.max_difference, other.max_difference)


def run_load(model, mix: Sequence[Request], expected: Dict[str, np.ndarray],
             threads: int, seconds: float) -> LoadResult:
  """Calls the signatures from `threads` threads for `seconds`, checking each answer.

  Each thread goes round the request mix (starting at a different request) until the
  time is up. A valid request's logits must equal `expected` within `ATOL`; a bad
  request must raise InvalidArgumentError with its message.
  """
  result = LoadResult(threads=threads)
  lock = threading.Lock()
  inputs = [request.make_inputs() for request in mix]
  deadline = time.perf_counter() + seconds

  def worker(offset):
    local = LoadResult(threads=threads)
    index = offset
    while time.perf_counter() < deadline:
      request, request_inputs = mix[index % len(mix)], inputs[index % len(mix)]
      index += 1
      start = time.perf_counter()
      try:
        logits = model.signatures[request.signature](
            inputs=request_inputs)["logits"].numpy()
      except tf.errors.InvalidArgumentError as e:
        if request.error is not None and request.error in e.message:
          local.rejected += 1
        else:
          local.unexpected.append(f"{request.name}: {e.message.splitlines()[0]}")
        continue
      except Exception as e:  # noqa: BLE001 any other failure is counted
        local.unexpected.append(f"{request.name}: {type(e).__name__}: {e}")
        continue
      elapsed = time.perf_counter() - start
      if request.error is not None:
        local.unexpected.append(f"{request.name}: no error")
        continue
      local.valid += 1
      local.latencies.append(elapsed)
      difference = float(np.max(np.abs(logits - expected[request.name])))
      local.max_difference = max(local.max_difference, difference)
      if difference > ATOL:
        local.mismatches.append(f"{request.name}: {difference:.3g}")
    with lock:
      result.merge(local)

  started = time.perf_counter()
  workers = [threading.Thread(target=worker, args=(i * len(mix) // threads,))
             for i in range(threads)]
  for thread in workers:
    thread.start()
  for thread in workers:
    thread.join()
  result.seconds = time.perf_counter() - started
  return result


def resident_mb() -> float:
  """This process's resident memory now (VmRSS), in MB."""
  with open("/proc/self/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


def measure(model, threads: Sequence[int] = (1, 8), seconds_per_round: float = 15.0,
            rounds: int = 4, input_size: int = 32) -> dict:
  """Rounds of each thread count in turn; the figures of each, and memory."""
  mix = requests(input_size)
  expected = reference_answers(model, mix)
  for count in threads:  # Warm-up: tracing, thread pools, allocator.
    run_load(model, mix, expected, count, min(2.0, seconds_per_round))
  rss_before = resident_mb()
  totals = {count: LoadResult(threads=count) for count in threads}
  for round_number in range(rounds):
    order = list(threads) if round_number % 2 == 0 else list(threads)[::-1]
    for count in order:
      totals[count].merge(run_load(model, mix, expected, count, seconds_per_round))
  return {
      "results": [totals[count].summary() for count in threads],
      "problems": {count: totals[count].mismatches[:5] + totals[count].unexpected[:5]
                   for count in threads},
      "requests_in_mix": len(mix), "bad_requests_in_mix": sum(
          r.error is not None for r in mix),
      "rounds": rounds, "seconds_per_round": seconds_per_round,
      "rss_before_mb": rss_before, "rss_after_mb": resident_mb(),
  }


@dataclasses.dataclass
class SoakInterval:
  """What the soak saw in one interval (requests by the time they started)."""
  index: int
  latencies: List[float] = dataclasses.field(default_factory=list)  # Valid, seconds.
  refused: collections.Counter = dataclasses.field(  # Invalid kind -> with its message.
      default_factory=collections.Counter)
  failures: collections.Counter = dataclasses.field(  # "outcome: kind" -> count.
      default_factory=collections.Counter)
  rss_mb: List[float] = dataclasses.field(default_factory=list)  # Samples.

  def summary(self, interval_seconds: float) -> dict:
    """JSON-able figures of the interval."""
    latencies = (np.array(self.latencies) * 1e3 if self.latencies
                 else np.full([1], np.nan))
    rss = self.rss_mb or [float("nan")]
    return {
        "interval": self.index, "start_s": self.index * interval_seconds,
        "valid": len(self.latencies), "refused": dict(sorted(self.refused.items())),
        "failures": dict(sorted(self.failures.items())),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "rss_mb": float(np.mean(rss)), "rss_max_mb": float(np.max(rss)),
    }


def _kind(request: Request) -> str:
  """A request's kind: its name without the image number (`png_3` -> `png`)."""
  return request.name.rsplit("_", 1)[0] if request.error is None else request.name


def _outcome(model, request: Request, inputs, expected) -> Optional[str]:
  """Calls `model` with one request; None if it went as it must, else what failed."""
  try:
    logits = model.signatures[request.signature](inputs=inputs)["logits"].numpy()
  except tf.errors.InvalidArgumentError as e:
    if request.error is None:
      return "valid request failed"
    return None if request.error in e.message else "refused with another message"
  except Exception as e:  # noqa: BLE001 any failure is the answer
    return f"{type(e).__name__}"
  if request.error is not None:
    return "invalid request answered"
  if float(np.max(np.abs(logits - expected[request.name]))) > ATOL:
    return "answer differs from the single-threaded one"
  return None


def soak(model, seconds: float, clients: int = 8, interval_seconds: float = 60.0,
         input_size: int = 32, sample_seconds: float = 1.0) -> List[dict]:
  """Runs `clients` threads against `model` for `seconds`; one summary per interval.

  Each client goes round the request mix (`requests`, valid and invalid kinds; each
  client starting at a different request) without pause. A request counts in the
  interval in which it started. A sampler thread reads the resident memory every
  `sample_seconds`; an interval's `rss_mb` is the mean of its samples.
  """
  count = max(1, round(seconds / interval_seconds))
  mix = requests(input_size)
  expected = reference_answers(model, mix)
  inputs = [request.make_inputs() for request in mix]
  intervals = [SoakInterval(index) for index in range(count)]
  lock = threading.Lock()
  start = time.perf_counter()
  deadline = start + count * interval_seconds
  done = threading.Event()

  def interval_at(moment):
    return intervals[min(count - 1, int((moment - start) / interval_seconds))]

  def client(offset):
    index = offset
    while True:
      began = time.perf_counter()
      if began >= deadline:
        return
      request = mix[index % len(mix)]
      failure = _outcome(model, request, inputs[index % len(mix)], expected)
      elapsed = time.perf_counter() - began
      index += 1
      with lock:
        interval = interval_at(began)
        if failure is not None:
          interval.failures[f"{failure}: {_kind(request)}"] += 1
        elif request.error is None:
          interval.latencies.append(elapsed)
        else:
          interval.refused[request.name] += 1

  def sampler():
    while not done.wait(sample_seconds):
      now = time.perf_counter()
      if now < deadline:
        rss = resident_mb()
        with lock:
          interval_at(now).rss_mb.append(rss)

  threads = [threading.Thread(target=client, args=(i * len(mix) // clients,))
             for i in range(clients)]
  watcher = threading.Thread(target=sampler)
  watcher.start()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  done.set()
  watcher.join()
  return [interval.summary(interval_seconds) for interval in intervals]


def soak_checks(intervals: Sequence[dict],
                invalid_kinds: Sequence[str]) -> Dict[str, dict]:
  """The soak's verdicts: {check: {"ok": bool, "detail": str}}.

  - no failure of any kind (a valid request that failed or answered differently, an
    invalid one answered or refused with another message, any other error);
  - every invalid kind refused with its message (at least once);
  - memory flat: the last interval's mean resident memory within
    `SOAK_MEMORY_TOLERANCE` of the second's (the first warms up);
  - latency stable: the last interval's p99 at most `SOAK_LATENCY_FACTOR` times the
    second's.
  """
  failures = collections.Counter()
  refused = collections.Counter()
  for interval in intervals:
    failures.update(interval["failures"])
    refused.update(interval["refused"])
  second, last = intervals[min(1, len(intervals) - 1)], intervals[-1]
  memory = (last["rss_mb"] - second["rss_mb"]) / second["rss_mb"]
  latency = last["p99_ms"] / second["p99_ms"]
  return {
      "no_failures": {"ok": not failures, "detail": (
          ", ".join(f"{kind} x{n}" for kind, n in sorted(failures.items()))
          or "none")},
      "invalid_refused": {"ok": all(refused[kind] > 0 for kind in invalid_kinds),
                          "detail": ", ".join(f"{kind} x{refused[kind]}"
                                              for kind in invalid_kinds)},
      "memory_flat": {"ok": bool(abs(memory) <= SOAK_MEMORY_TOLERANCE), "detail": (
          f"{second['rss_mb']:.0f} MB in interval 2, {last['rss_mb']:.0f} MB in the "
          f"last ({memory:+.1%}; limit {SOAK_MEMORY_TOLERANCE:.0%})")},
      "latency_stable": {"ok": bool(latency <= SOAK_LATENCY_FACTOR), "detail": (
          f"p99 {second['p99_ms']:.1f} ms in interval 2, {last['p99_ms']:.1f} ms in "
          f"the last ({latency:.2f}x; limit {SOAK_LATENCY_FACTOR:g}x)")},
  }


def soak_markdown(results: dict) -> str:
  """The soak's report: one row per interval, then the verdicts."""
  kinds = results["invalid_kinds"]
  lines = [
      "# Serving soak", "",
      f"SavedModel `{results['saved_model']}`, {results['date']}; "
      f"{results['machine']['usable_cores']} usable cores, TensorFlow "
      f"{results['machine']['tensorflow']}. {results['clients']} clients for "
      f"{results['seconds']:g} s without pause, each going round "
      f"{results['requests_in_mix']} requests ({len(kinds)} invalid kinds). Load "
      f"average (1 min) at the start {results['load_average_start'][0]:.2f}, at the "
      f"end {results['load_average_end'][0]:.2f}.", "",
      f"| interval ({results['interval_seconds']:g} s) | valid | p50 ms | p99 ms | "
      + " | ".join(f"{kind} refused" for kind in kinds)
      + " | failures | RSS MB (mean) | RSS MB (max) |",
      "|---" * (7 + len(kinds)) + "|",
  ]
  for row in results["intervals"]:
    failures = sum(row["failures"].values())
    lines.append(
        f"| {row['interval'] + 1} | {row['valid']} | {row['p50_ms']:.1f} | "
        f"{row['p99_ms']:.1f} | "
        + " | ".join(str(row["refused"].get(kind, 0)) for kind in kinds)
        + f" | {failures} | {row['rss_mb']:.0f} | {row['rss_max_mb']:.0f} |")
  lines += ["", "| check | verdict | detail |", "|---|---|---|"]
  for name, check in results["checks"].items():
    lines.append(f"| {name} | {'pass' if check['ok'] else 'FAIL'} | "
                 f"{check['detail']} |")
  return "\n".join(lines + [""])


def run_soak(saved_model: str, out: pathlib.Path, seconds: float, clients: int,
             interval_seconds: float) -> dict:
  """`soak` on the SavedModel at `saved_model`; writes `SOAK_JSON` and `SOAK_MD`."""
  load_start = os.getloadavg()
  model = tf.saved_model.load(saved_model)
  mix = requests()
  invalid_kinds = [request.name for request in mix if request.error is not None]
  results = {
      "saved_model": saved_model,
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "machine": machine(), "load_average_start": load_start, "seconds": seconds,
      "clients": clients, "interval_seconds": interval_seconds,
      "requests_in_mix": len(mix), "invalid_kinds": invalid_kinds,
  }
  results["intervals"] = soak(model, seconds, clients, interval_seconds)
  results["load_average_end"] = os.getloadavg()
  results["checks"] = soak_checks(results["intervals"], invalid_kinds)
  results["ok"] = all(check["ok"] for check in results["checks"].values())
  out.mkdir(parents=True, exist_ok=True)
  (out / SOAK_JSON).write_text(json.dumps(results, indent=1) + "\n")
  (out / SOAK_MD).write_text(soak_markdown(results))
  print(soak_markdown(results))
  return results


def machine() -> dict:
  """What the figures were measured on."""
  return {"logical_cores": os.cpu_count(),
          "usable_cores": len(os.sched_getaffinity(0)),
          "platform": platform.platform(), "python": platform.python_version(),
          "tensorflow": tf.__version__}


def markdown(results: dict) -> str:
  """The report: one row per thread count."""
  lines = [
      "# Serving under concurrent load", "",
      f"SavedModel `{results['saved_model']}`, {results['date']}; "
      f"{results['machine']['usable_cores']} usable cores, TensorFlow "
      f"{results['machine']['tensorflow']}. Load average (1 min) at the start "
      f"{results['load_average_start'][0]:.2f}, at the end "
      f"{results['load_average_end'][0]:.2f}: other processes shared the CPU.", "",
      f"{results['rounds']} alternating rounds of {results['seconds_per_round']:g} s "
      f"per thread count; each thread goes round {results['requests_in_mix']} "
      f"requests ({results['bad_requests_in_mix']} bad: wrong shape, corrupt bytes, "
      "oversize header, empty batch). Latency is of the valid requests (one image "
      "each).", "",
      "| threads | requests | requests/s | valid/s | p50 ms | p99 ms | bad, rejected "
      "| mismatches | unexpected errors |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  for row in results["results"]:
    lines.append(
        f"| {row['threads']} | {row['requests']} | {row['requests_per_second']:.1f} "
        f"| {row['valid_per_second']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
        f"| {row['rejected_as_expected']} | {row['mismatches']} "
        f"| {row['unexpected_errors']} |")
  lines += ["", f"Resident memory {results['rss_before_mb']:.0f} MB after the warm-up, "
            f"{results['rss_after_mb']:.0f} MB after the rounds.", ""]
  return "\n".join(lines)


def main(argv=None) -> dict:
  """Measures and writes `serving_load.json` and `serving_load.md`; with
  `--soak_seconds`, runs the soak and writes `serving_soak.json` and
  `serving_soak.md` (`run_soak`). Returns the results written."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--saved_model", required=True,
                      help="SavedModel directory (gsa_keras.export).")
  parser.add_argument("--out", required=True, help="Directory of the report.")
  parser.add_argument("--threads", type=int, default=8,
                      help="Threads beside the single-threaded rounds.")
  parser.add_argument("--seconds", type=float, default=15.0,
                      help="Seconds per round and thread count.")
  parser.add_argument("--rounds", type=int, default=4)
  parser.add_argument("--quick", action="store_true",
                      help="A smoke run: 2 rounds of 1 s.")
  parser.add_argument("--soak_seconds", type=float, default=None,
                      help="Run the soak for this long instead (600: the committed "
                      "run), with --threads clients.")
  parser.add_argument("--soak_interval", type=float, default=60.0,
                      help="Seconds per row of the soak's figures.")
  args = parser.parse_args(argv)
  if args.threads < 2:
    parser.error(f"--threads must be at least 2, got {args.threads}.")
  if not tf.io.gfile.exists(os.path.join(args.saved_model, "saved_model.pb")):
    parser.error(f"--saved_model: no SavedModel in {args.saved_model!r}.")
  if args.soak_seconds is not None:
    if args.soak_interval <= 0:
      parser.error(f"--soak_interval must be positive, got {args.soak_interval}.")
    if args.soak_seconds < 3 * args.soak_interval:
      parser.error(f"--soak_seconds must cover at least 3 intervals (the first "
                   f"warms up, the second and the last are compared): got "
                   f"{args.soak_seconds:g} with --soak_interval="
                   f"{args.soak_interval:g}.")
    return run_soak(args.saved_model, pathlib.Path(args.out), args.soak_seconds,
                    args.threads, args.soak_interval)
  seconds, rounds = (1.0, 2) if args.quick else (args.seconds, args.rounds)
  load_start = os.getloadavg()
  model = tf.saved_model.load(args.saved_model)
  results = {
      "saved_model": args.saved_model, "quick": args.quick,
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "machine": machine(), "load_average_start": load_start,
  }
  results.update(measure(model, (1, args.threads), seconds, rounds))
  results["load_average_end"] = os.getloadavg()
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / RESULTS_JSON).write_text(json.dumps(results, indent=1) + "\n")
  (out / REPORT_MD).write_text(markdown(results))
  print(markdown(results))
  return results


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(0 if main().get("ok", True) else 1)
