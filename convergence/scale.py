"""Running the experiment at scale: the machinery, not the lesson.

Nothing here changes a number: it decides which networks are trained where
and when, and keeps finished ones safe. The lesson files (network, stacked,
train, stats) never import it.

Threads. A stack's training is a chain of small matrix products that one
core runs nearly as fast as two, so ``train_in_workers`` trains several
stacks ("chunks") at once, each in a thread of its own, every op on a single
thread (``use_one_thread_per_op``): with 2 cores, two chunks take little
longer than one. One thread per op also makes a chunk's numbers independent
of how many run beside it. TensorFlow runs a compiled loop without holding
Python's lock, so threads suffice.

Chunks and checkpoints. A strategy's networks are trained ``chunk_size`` at
a time. Each finished chunk's accuracies go at once, atomically, to a
checkpoint file in the run's staging directory
(``<output_dir>.partial/checkpoints/``), with a checksum. An interrupted run
started again with the same flags finds them there, checks them, and trains
only the chunks still missing. Chunks are fixed by --num_runs and
--chunk_size alone (runs 0..C-1, C..2C-1, ...) and a network's initial
weights by (seed, strategy, run) alone, so every network is always trained
in the same chunk from the same start: resumed and sharded runs give
bit-identical numbers.

Shards. ``--num_shards K --shard_index k`` trains the k-th of K shares of
each strategy's chunks, so K processes or machines can share the work, each
into its own output directory. Each shard's results.json holds its
accuracies; ``--merge`` reads the K shard results (checking they belong
together), puts the networks back in order and computes the statistics and
the figure, exactly as one unsharded run would.
"""
from concurrent import futures
import hashlib
import json
import math
import os
import threading
import time

import tensorflow as tf

from convergence import data as data_lib
from convergence import stacked
from convergence import train
from tfscratch.lab.errors import DataError
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.files import write_json
from tfscratch.lab.mnist import load_mnist
from tfscratch.lab.monitor import Guard
from tfscratch.lab.monitor import Monitor
from tfscratch.lab.monitor import print_line

CHECKPOINT_DIR = "checkpoints"
# train.train_runs' result names -> results.json's (per strategy).
METRIC_NAMES = {"test": "accuracies", "validation": "validation_accuracies",
                "train": "train_accuracies", "train_loss": "train_losses"}
RESULTS_FILE = "results.json"
# Networks per stack: stacks of 25 beat stacks of 50 by about 10% on two
# cores (two stacks of 50 fight over the cache). Float rounding depends on
# the stack's size, so a run is bit-identical only at the same chunk size.
DEFAULT_CHUNK_SIZE = 25
# Each worker holds a stack per strategy (tens of MB): more workers than
# cores only costs memory.
MAX_WORKERS = 128
# Steps between the losses written to TensorBoard.
SUMMARY_EVERY = 10


class ShardError(ScratchError):
  """A checkpoint or shard file is unreadable, corrupt or does not belong."""


class Cancelled(Exception):
  """A chunk stopped early because another one failed (or Ctrl-C)."""


def default_workers():
  """The CPUs this process may use (Linux), else the machine's CPU count;
  at most MAX_WORKERS."""
  try:
    cpus = len(os.sched_getaffinity(0))
  except AttributeError:  # macOS, Windows: no sched_getaffinity
    cpus = os.cpu_count() or 1
  return min(cpus, MAX_WORKERS)


def load_data(data_dir, train_size, train_offset):
  """MNIST, and the blog's images cut out of it (``data.blog_data``)."""
  mnist = load_mnist(data_dir, validation_size=0)
  try:
    return data_lib.blog_data(mnist, train_size, train_offset)
  except ValueError as error:
    raise DataError(f"{mnist.source}: {error}") from error


# Threads -------------------------------------------------------------------


def use_one_thread_per_op(workers):
  """Runs every TensorFlow op on one thread, ``workers`` at a time (one per
  chunk in flight). Must come before the process's first TensorFlow op."""
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(workers)


def train_in_workers(train_chunk, tasks, workers):
  """Calls ``train_chunk(task, stacks, stop)`` for every task, ``workers``
  tasks at a time, each in a thread of its own.

  Each thread passes its own dict ``stacks`` to every task it runs, to keep
  the train.Stacks it builds (a stack's variables hold one chunk at a
  time). An error (or Ctrl-C) sets the threading.Event ``stop``, drops the
  tasks not started, waits for the chunks in flight to stop (``Cancelled``)
  and is raised.

  Returns:
    The results of ``train_chunk``, in the order of ``tasks``.
  """
  stop = threading.Event()
  local = threading.local()

  def work(task):
    if stop.is_set():
      raise Cancelled(str(task))
    if not hasattr(local, "stacks"):
      local.stacks = {}
    try:
      return train_chunk(task, local.stacks, stop)
    except BaseException:
      stop.set()  # before this thread can take another task
      raise

  with futures.ThreadPoolExecutor(workers) as pool:
    pending = [pool.submit(work, task) for task in tasks]
    try:
      futures.wait(pending, return_when=futures.FIRST_EXCEPTION)
    finally:  # all done, or an error or Ctrl-C: stop the chunks in flight
      stop.set()
      for future in pending:
        future.cancel()
  for future in pending:
    error = None if future.cancelled() else future.exception()
    if error is not None and not isinstance(error, Cancelled):
      raise error
  return [future.result() for future in pending]


# Chunks ----------------------------------------------------------------------


def chunk_ranges(num_runs, chunk_size, first_run=0):
  """Runs first_run..first_run+num_runs-1 cut into consecutive [first, end)
  chunks."""
  stop = first_run + num_runs
  return [(first, min(stop, first + chunk_size))
          for first in range(first_run, stop, chunk_size)]


def shard_chunks(num_runs, chunk_size, num_shards, shard_index, first_run=0):
  """The chunks shard ``shard_index`` of ``num_shards`` trains.

  Shards take whole chunks, so every network is trained in the same chunk,
  beside the same other networks, however the work is split.
  """
  chunks = chunk_ranges(num_runs, chunk_size, first_run)
  return chunks[len(chunks) * shard_index // num_shards:
                len(chunks) * (shard_index + 1) // num_shards]


def shard_range(num_runs, chunk_size, num_shards, shard_index, first_run=0):
  """The runs [start, stop) of a shard (see shard_chunks)."""
  chunks = shard_chunks(num_runs, chunk_size, num_shards, shard_index,
                        first_run)
  return chunks[0][0], chunks[-1][1]


# Job arrays: the variable each scheduler sets to a task's index.
SHARD_INDEX_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def shard_index_from_environment(environ=None):
  """The shard index a job-array scheduler gives this process, or None.

  SLURM (``sbatch --array=0-K``) sets SLURM_ARRAY_TASK_ID; a Kubernetes
  Indexed Job sets JOB_COMPLETION_INDEX. Returns (index, variable name) of
  the first one set, None if neither is.

  Raises:
    ValueError: the variable is set but is not an integer >= 0.
  """
  environ = os.environ if environ is None else environ
  for name in SHARD_INDEX_VARIABLES:
    value = environ.get(name)
    if value is None:
      continue
    if not value.strip().isdigit():
      raise ValueError(f"${name}={value!r} is not a shard index (an integer "
                       ">= 0); pass --shard_index explicitly")
    return int(value), name
  return None


def train_chunks(config, data, strategies, chunks, outputs, settings,
                 workers, log_every, divergence=(10.0, 3)):
  """Trains (or takes from checkpoints) every chunk of every strategy.

  Args:
    config: a train.Config.
    chunks: [first, end) run ranges (``shard_chunks``).
    outputs: the run's tfscratch.lab.outputs.RunOutputs: checkpoints go to
      its staging directory, losses to its TensorBoard writer.
    settings: what a checkpoint must have been written with to be reused.
    workers: chunks trained at once.
    log_every: steps between a chunk's progress lines.
    divergence: (factor, patience) of each chunk's monitor.Guard.
  Returns:
    (dict strategy -> dict metric -> its values for all the chunks' runs in
     run order: "accuracies" (test), "train_accuracies", "train_losses"
     (head 3's mean cross-entropy on the training images) and, when there
     are validation images, "validation_accuracies";
     dict compiled function -> tracing count, the largest over the workers'
     copies; 1 each).
  """
  splits = ("test", "train") + (("validation",) if len(data.validation)
                                else ())
  accuracies = {strategy: [None] * len(chunks) for strategy in strategies}
  tasks = []
  for strategy in strategies:
    for number, (first, end) in enumerate(chunks):
      path = checkpoint_path(outputs.staging_dir, strategy, first, end)
      if os.path.exists(path):
        accuracies[strategy][number] = load_chunk(path, settings, strategy,
                                                  first, end)
        print_line(f"{strategy} runs {first}-{end - 1}: kept from {path}")
      else:
        tasks.append((strategy, number, first, end, path))
  built = []  # every Stack any worker built, for the trace counts

  def train_chunk(task, stacks, stop):
    strategy, number, first, end, path = task
    start = time.time()
    if (strategy, end - first) not in stacks:
      stacks[strategy, end - first] = train.build(config, data, strategy,
                                                  end - first)
      built.append(stacks[strategy, end - first])
    label = f"{strategy} runs {first}-{end - 1}"
    steps = train.total_steps(strategy, config.step_scale)
    # No default summary writer in this thread: the monitor would write
    # every step's loss to TensorBoard, a cost in Python (under its lock)
    # of a few percent of the training; every SUMMARY_EVERY-th is enough.
    monitor = Monitor(steps, every=log_every,
                      guard=Guard(*divergence, label=label), label=label)

    def log(first_step, losses):
      losses = monitor.record(first_step, losses)
      with outputs.summary_writer.as_default():
        # The chunks of a strategy laid end to end, one curve per strategy.
        for offset in range((-first_step - 1) % SUMMARY_EVERY, len(losses),
                            SUMMARY_EVERY):
          tf.summary.scalar(f"loss/{strategy}", losses[offset],
                            step=number * steps + first_step + offset + 1)
      if stop.is_set():
        raise Cancelled(label)

    results = train.train_runs(
        config, data, strategy, range(first, end), splits=splits, log=log,
        stack=stacks[strategy, end - first], losses=("train",))
    chunk = {METRIC_NAMES[name]: results[name].tolist() for name in results}
    save_chunk(path, settings, strategy, first, end, chunk)
    print_line(f"{label}: test accuracy {100 * results['test'].mean():.2f}% "
               f"± {100 * results['test'].std():.2f}, training loss "
               f"{results['train_loss'].mean():.4f} "
               f"({time.time() - start:.1f} s, checkpointed)")
    return chunk

  try:
    trained = train_in_workers(train_chunk, tasks, workers)
  except KeyboardInterrupt:
    print_line(f"stopped: the finished chunks stay in {outputs.staging_dir}; "
               "the same command resumes")
    raise
  for (strategy, number, *_), chunk_accuracies in zip(tasks, trained):
    accuracies[strategy][number] = chunk_accuracies
  counts = {}
  if tasks:
    counts["draw_weights"] = (
        stacked.draw_weights.experimental_get_tracing_count())
  for stack in built:
    prefix = f"{stack.strategy}_x{stack.networks.num_networks}/"
    for name, count in train.trace_counts(stack).items():
      counts[prefix + name] = max(count, counts.get(prefix + name, 0))
  return ({strategy: {name: [a for chunk in accuracies[strategy]
                             for a in chunk[name]]
                      for name in accuracies[strategy][0]}
           for strategy in strategies}, counts)


# Checkpoints -----------------------------------------------------------------


def checkpoint_path(run_dir, strategy, first, end):
  return os.path.join(run_dir, CHECKPOINT_DIR,
                      f"{strategy}_runs_{first:05d}-{end - 1:05d}.json")


def _checksum(content):
  """SHA-256 of ``content`` as canonical JSON (sorted keys, no spaces)."""
  text = json.dumps(content, sort_keys=True, separators=(",", ":"),
                    allow_nan=False)
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_chunk(path, settings, strategy, first, end, metrics):
  """Writes one finished chunk's metrics (dict: "accuracies", the test
  accuracies, and the other lists of METRIC_NAMES), with their checksum,
  atomically."""
  content = {"config": settings, "strategy": strategy, "runs": [first, end]}
  content.update({name: [float(a) for a in values]
                  for name, values in metrics.items()})
  write_json(path, dict(content, checksum=_checksum(content)))


def _read_json(path, what, advice=""):
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except FileNotFoundError as error:
    raise ShardError(f"{path}: no such file ({what})") from error
  except OSError as error:
    raise ShardError(f"{path}: cannot read: {error.strerror}") from error
  except (UnicodeDecodeError, json.JSONDecodeError) as error:
    raise ShardError(f"{path}: corrupt, not valid JSON ({error}){advice}"
                     ) from error


def _check_accuracies(path, accuracies, count, where, advice=""):
  """``accuracies`` must be ``count`` numbers in [0, 1]."""
  if (not isinstance(accuracies, list) or len(accuracies) != count or
      not all(isinstance(a, (int, float)) and not isinstance(a, bool) and
              math.isfinite(a) and 0.0 <= a <= 1.0 for a in accuracies)):
    raise ShardError(f"{path}: {where} must be a list of {count} accuracies "
                     f"in [0, 1]; the file is corrupt{advice}")


def _check_losses(path, losses, count, where, advice=""):
  """``losses`` must be ``count`` finite numbers >= 0."""
  if (not isinstance(losses, list) or len(losses) != count or
      not all(isinstance(a, (int, float)) and not isinstance(a, bool) and
              math.isfinite(a) and a >= 0.0 for a in losses)):
    raise ShardError(f"{path}: {where} must be a list of {count} finite "
                     f"losses >= 0; the file is corrupt{advice}")


def _config_difference(config, expected):
  keys = sorted(set(config) | set(expected))
  return ", ".join(f"{key} {config.get(key)!r} (expected {expected.get(key)!r})"
                   for key in keys if config.get(key) != expected.get(key))


def load_chunk(path, settings, strategy, first, end):
  """The metrics of a chunk checkpoint (dict as ``save_chunk`` got it),
  checked against this run.

  Raises:
    ShardError: naming ``path`` and what to do, if it is corrupt, was
      changed after it was written (checksum), or was written by a run with
      other settings (which resuming must not mix in).
  """
  advice = ("; delete it to train that chunk again, or pass --noresume to "
            "start the whole run over")
  chunk = _read_json(path, "a chunk checkpoint", advice)
  keys = {"config", "strategy", "runs", "accuracies", "checksum"}
  if not isinstance(chunk, dict) or not keys <= set(chunk):
    raise ShardError(f"{path}: corrupt chunk checkpoint (missing keys)"
                     f"{advice}")
  content = {key: chunk[key] for key in chunk if key != "checksum"}
  try:
    intact = _checksum(content) == chunk["checksum"]
  except (TypeError, ValueError):  # not JSON numbers
    intact = False
  if not intact:
    raise ShardError(f"{path}: checksum mismatch, the file was changed after "
                     f"it was written{advice}")
  if chunk["config"] != settings:
    raise ShardError(
        f"{path}: written by a run with other settings: "
        f"{_config_difference(chunk['config'], settings)}. Resume with the "
        "same flags, or pass --noresume to start over")
  if chunk["strategy"] != strategy or chunk["runs"] != [first, end]:
    raise ShardError(f"{path}: holds {chunk['strategy']} runs {chunk['runs']}, "
                     f"expected {strategy} runs {[first, end]}{advice}")
  metrics = {name: chunk[name] for name in METRIC_NAMES.values()
             if name in chunk}
  for name, values in metrics.items():
    if name == "train_losses":
      _check_losses(path, values, end - first, name, advice)
    else:
      _check_accuracies(path, values, end - first, name, advice)
  return metrics


# Shards ----------------------------------------------------------------------


def shard_dir(path):
  """A shard's output directory, given it or its results.json."""
  return path if os.path.isdir(path) else os.path.dirname(path)


def shard_results_path(path):
  """A shard given as its output directory or as its results.json."""
  return os.path.join(path, RESULTS_FILE) if os.path.isdir(path) else path


def read_shards(paths):
  """Reads and checks the results of the shards of one experiment.

  Args:
    paths: every shard's output directory (or results.json), any order.
  Returns:
    (the shards' config, strategies, dict strategy -> accuracies of all runs
    in order, the shards' results.json dicts in shard order).
  Raises:
    ShardError: naming the file, if one is missing, corrupt, from another
      experiment (other settings), a duplicate, or if shards are missing.
  """
  shards = {}
  first_path = config = strategies = num_shards = None
  for given in paths:
    path = shard_results_path(given)
    result = _read_json(path, "expected a shard's output directory or its "
                        "results.json")
    if (not isinstance(result, dict) or
        not isinstance(result.get("shard"), dict) or
        not {"config", "strategies"} <= set(result)):
      raise ShardError(
          f"{path}: not the results of a shard of python -m convergence "
          "(run with --num_shards > 1); missing key 'shard', 'config' or "
          "'strategies'")
    shard = result["shard"]
    if (not isinstance(result["config"], dict) or
        not all(isinstance(result["config"].get(key), int) and
                result["config"][key] > 0
                for key in ("num_runs", "chunk_size"))):
      raise ShardError(f"{path}: its config lacks a positive num_runs and "
                       "chunk_size; the file is corrupt")
    if first_path is None:
      first_path, config = path, result["config"]
      strategies, num_shards = result["strategies"], shard.get("num_shards")
    elif result["config"] != config:
      raise ShardError(
          f"{path}: from another experiment than {first_path}: "
          f"{_config_difference(result['config'], config)}")
    elif result["strategies"] != strategies:
      raise ShardError(f"{path}: strategies {result['strategies']} differ "
                       f"from {strategies} in {first_path}")
    if shard.get("num_shards") != num_shards:
      raise ShardError(f"{path}: one of {shard.get('num_shards')} shards, but "
                       f"{first_path} is one of {num_shards}")
    index = shard.get("index")
    if not isinstance(index, int) or not 0 <= index < num_shards:
      raise ShardError(f"{path}: shard index {index!r} is not in "
                       f"0..{num_shards - 1}")
    if index in shards:
      raise ShardError(f"{path} and {shards[index][0]} are both shard "
                       f"{index} of {num_shards}")
    first, end = shard_range(config["num_runs"], config["chunk_size"],
                             num_shards, index)
    for strategy in strategies:
      part = result.get(strategy)
      if not isinstance(part, dict) or part.get("runs") != [first, end]:
        raise ShardError(f"{path}: no '{strategy}' results for runs "
                         f"[{first}, {end}); the file is corrupt")
      _check_accuracies(path, part.get("accuracies"), end - first,
                        f"{strategy}.accuracies")
    shards[index] = (path, result)
  missing = sorted(set(range(num_shards)) - set(shards))
  if missing:
    raise ShardError(
        f"shard{'s' * (len(missing) > 1)} {', '.join(map(str, missing))} of "
        f"{num_shards} missing: pass every shard's output directory")
  accuracies = {strategy: [a for index in range(num_shards)
                           for a in shards[index][1][strategy]["accuracies"]]
                for strategy in strategies}
  return (config, strategies, accuracies,
          [shards[index][1] for index in range(num_shards)])
