"""Where finished runs are kept: chunk checkpoints, shards, and merging them.

Chunks. A strategy's runs are trained ``chunk_size`` at a time. Each finished
chunk's accuracies go at once, atomically, to a checkpoint file in the run's
staging directory (``<output_dir>.partial/checkpoints/``). An interrupted run
started again with the same flags finds them there and trains only the chunks
still missing. Chunks are fixed by --num_runs and --chunk_size alone (runs
0..C-1, C..2C-1, ...) and a run's initial weights by (seed, strategy, run
index) alone, so every network is always trained in the same chunk from the
same start: resumed and sharded runs give bit-identical numbers.

Shards. ``--num_shards K --shard_index k`` trains the k-th of K equal shares
of each strategy's chunks, so K processes or machines can share the work.
Each shard's results.json holds its accuracies; ``--merge`` reads the K
shard results (checking they belong together), puts the runs back in order
and computes the statistics and the figure, exactly as one unsharded run
would. Merging never changes the shard directories.
"""
import json
import math
import os

from tfscratch.lab.errors import ScratchError
from tfscratch.lab.outputs import write_json

CHECKPOINT_DIR = "checkpoints"
RESULTS_FILE = "results.json"


class ShardError(ScratchError):
  """A checkpoint or shard file is unreadable, corrupt or does not belong."""


def chunk_ranges(num_runs, chunk_size):
  """Runs 0..num_runs-1 cut into consecutive [first, end) chunks."""
  return [(first, min(num_runs, first + chunk_size))
          for first in range(0, num_runs, chunk_size)]


def shard_chunks(num_runs, chunk_size, num_shards, shard_index):
  """The chunks shard ``shard_index`` of ``num_shards`` trains.

  Shards take whole chunks, so every network is trained in the same chunk,
  beside the same other networks, however the work is split: sharded and
  unsharded runs give bit-identical numbers.
  """
  chunks = chunk_ranges(num_runs, chunk_size)
  return chunks[len(chunks) * shard_index // num_shards:
                len(chunks) * (shard_index + 1) // num_shards]


def shard_range(num_runs, chunk_size, num_shards, shard_index):
  """The runs [start, stop) of a shard (see shard_chunks)."""
  chunks = shard_chunks(num_runs, chunk_size, num_shards, shard_index)
  return chunks[0][0], chunks[-1][1]


def checkpoint_path(run_dir, strategy, first, end):
  return os.path.join(run_dir, CHECKPOINT_DIR,
                      f"{strategy}_runs_{first:05d}-{end - 1:05d}.json")


def save_chunk(path, config, strategy, first, end, accuracies):
  """Writes one finished chunk's accuracies (atomically)."""
  write_json(path, {"config": config, "strategy": strategy,
                    "runs": [first, end],
                    "accuracies": [float(a) for a in accuracies]})


def _read_json(path, what):
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except FileNotFoundError as error:
    raise ShardError(f"{path}: no such file ({what})") from error
  except OSError as error:
    raise ShardError(f"{path}: cannot read: {error.strerror}") from error
  except (UnicodeDecodeError, json.JSONDecodeError) as error:
    raise ShardError(f"{path}: corrupt, not valid JSON ({error})") from error


def _check_accuracies(path, accuracies, count, where):
  """``accuracies`` must be ``count`` numbers in [0, 1]."""
  if (not isinstance(accuracies, list) or len(accuracies) != count or
      not all(isinstance(a, (int, float)) and not isinstance(a, bool) and
              math.isfinite(a) and 0.0 <= a <= 1.0 for a in accuracies)):
    raise ShardError(f"{path}: {where} must be a list of {count} accuracies "
                     "in [0, 1]; the file is corrupt")


def _config_difference(config, expected):
  keys = sorted(set(config) | set(expected))
  return ", ".join(f"{key} {config.get(key)!r} (expected {expected.get(key)!r})"
                   for key in keys if config.get(key) != expected.get(key))


def load_chunk(path, config, strategy, first, end):
  """The accuracies of a chunk checkpoint, checked against this run.

  Raises:
    ShardError: naming ``path``, if it is corrupt or was written by a run
      with other settings (which resuming must not mix in).
  """
  chunk = _read_json(path, "a chunk checkpoint")
  if not isinstance(chunk, dict) or not {"config", "strategy", "runs",
                                         "accuracies"} <= set(chunk):
    raise ShardError(f"{path}: corrupt chunk checkpoint (missing keys)")
  if chunk["config"] != config:
    raise ShardError(
        f"{path}: written by a run with other settings: "
        f"{_config_difference(chunk['config'], config)}. Resume with the "
        "same flags, or pass --noresume to start over")
  if chunk["strategy"] != strategy or chunk["runs"] != [first, end]:
    raise ShardError(f"{path}: holds {chunk['strategy']} runs {chunk['runs']}, "
                     f"expected {strategy} runs {[first, end]}")
  _check_accuracies(path, chunk["accuracies"], end - first, "accuracies")
  return chunk["accuracies"]


def shard_results_path(path):
  """A shard given as its output directory or as its results.json."""
  return os.path.join(path, RESULTS_FILE) if os.path.isdir(path) else path


def read_shards(paths):
  """Reads and checks the results of the shards of one experiment.

  Args:
    paths: every shard's output directory (or results.json), any order.
  Returns:
    (config, strategies, dict strategy -> accuracies of all runs in order).
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
  return config, strategies, accuracies
