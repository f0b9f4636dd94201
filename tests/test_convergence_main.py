"""``python -m convergence`` end to end, on a tiny schedule: results.json and
the figure; shards merged = one unsharded run; an interrupted run resumes;
bad flags and bad shard files end with a clear one-line error. (The issue-14
cases are in test_convergence_reliability.py.)"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from convergence import scale
from convergence import stats
from tests import mnist_fixture
from tests.cli_checks import assert_one_line_error

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 5% of the blog's steps (50 and 10 + 10 + 50), 2 chunks of 2 networks.
TINY = ["--num_runs=4", "--chunk_size=2", "--step_scale=0.05",
        "--num_permutations=200", "--log_every=1000"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def environment():
  env = dict(os.environ)
  if not env.get("MNIST_DATA_DIR") and os.path.isdir(
      mnist_fixture.SHARED_MNIST_DIR):
    env["MNIST_DATA_DIR"] = mnist_fixture.SHARED_MNIST_DIR
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def command(*flags, module="convergence"):
  return [sys.executable, "-m", module, *flags]


def run(*flags, module="convergence"):
  return subprocess.run(command(*flags, module=module), cwd=REPO_ROOT,
                        env=environment(), capture_output=True, text=True,
                        timeout=600)


def load(path):
  with open(os.path.join(path, "results.json")) as f:
    return json.load(f)


_PARSE = """
import importlib, json, sys
from absl import flags
importlib.import_module(sys.argv[1])
for argv in json.loads(sys.argv[2]):
  flags.FLAGS.unparse_flags()
  try:
    flags.FLAGS([sys.argv[1]] + argv)
    print(json.dumps(None))
  except flags.Error as error:
    print(json.dumps(str(error)))
"""


def flag_errors(module, argvs):
  """The message with which ``module``'s flags refuse each argv in
  ``argvs`` (None: accepted), all parsed in one process: one TensorFlow
  import instead of one per case."""
  parsed = subprocess.run([sys.executable, "-c", _PARSE, module,
                           json.dumps(argvs)], cwd=REPO_ROOT,
                          env=environment(), capture_output=True, text=True,
                          timeout=300, check=True)
  return [json.loads(line) for line in parsed.stdout.splitlines()]


class ConvergenceMainTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    mnist_fixture.real_mnist(validation_size=0)  # skips if MNIST is absent
    cls.tmp = tempfile.mkdtemp()
    cls.full_dir = os.path.join(cls.tmp, "full")
    cls.full = run(*TINY, "--workers=2", f"--output_dir={cls.full_dir}")

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_results_and_figure(self):
    self.assertEqual(self.full.returncode, 0, self.full.stderr)
    result = load(self.full_dir)
    for strategy in ("all_layers", "layerwise"):
      part = result[strategy]
      self.assertLen(part["accuracies"], 4)
      self.assertAllClose(part["mean"], sum(part["accuracies"]) / 4)
      self.assertGreater(part["std"], 0.0)
      # 5% of the schedule on 1,000 images still learns: chance is 10%.
      self.assertGreater(part["mean"], 0.5)
    # The tests compare the two strategies' own accuracies: the statistics
    # worked out here in NumPy, the p-values (whose distributions
    # test_convergence_stats checks against SciPy) recomputed from them.
    a = np.array(result["all_layers"]["accuracies"])
    b = np.array(result["layerwise"]["accuracies"])
    tests = result["tests"]
    self.assertAllClose(tests["mean_difference"], a.mean() - b.mean())
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 4
    self.assertAllClose(tests["welch_t"], (a.mean() - b.mean()) /
                        np.sqrt(va + vb))
    self.assertAllClose(tests["welch_df"], (va + vb) ** 2 /
                        (va ** 2 / 3 + vb ** 2 / 3))
    values = np.concatenate([a, b])
    self.assertAllClose(tests["ks_statistic"], np.abs(
        (a[:, None] <= values).mean(0) - (b[:, None] <= values).mean(0)).max())
    self.assertAllClose(tests["welch_p"], stats.welch_t_test(a, b)["p"])
    self.assertAllClose(tests["permutation_p"], stats.permutation_test(
        a, b, 200, seed=0)["p"])
    self.assertEqual(tests["num_permutations"], 200)
    with open(os.path.join(self.full_dir, "accuracy_distributions.png"),
              "rb") as f:
      self.assertEqual(f.read(8), PNG_SIGNATURE)
    self.assertLen(os.listdir(os.path.join(self.full_dir, "checkpoints")), 4)
    # Every compiled function traced once, in each of the two workers.
    self.assertEqual(result["trace_counts"], {
        "draw_weights": 1,
        "all_layers_x2/phase1_head3_train_steps": 1,
        "all_layers_x2/correct_counts": 1,
        "all_layers_x2/loss_sums": 1,
        "layerwise_x2/phase1_head1_train_steps": 1,
        "layerwise_x2/phase2_head2_train_steps": 1,
        "layerwise_x2/phase3_head3_train_steps": 1,
        "layerwise_x2/correct_counts": 1,
        "layerwise_x2/loss_sums": 1})
    self.assertEqual(result["test_accuracy"], result["all_layers"]["mean"])
    self.assertEqual(result["config"]["batch_size"], 50)

  def test_shards_merge_into_the_unsharded_result(self):
    """Issue 12 (6): with no --shard_index, the index comes from the job
    array: SLURM's $SLURM_ARRAY_TASK_ID (shard 0 here), a Kubernetes
    Indexed Job's $JOB_COMPLETION_INDEX (shard 1)."""
    shards = os.path.join(self.tmp, "shards")
    shard_dirs = [os.path.join(shards, f"s{i}") for i in range(2)]
    array_index = ({"SLURM_ARRAY_TASK_ID": "0"},
                   {"JOB_COMPLETION_INDEX": "1"})
    processes = [subprocess.Popen(
        command(*TINY, "--num_shards=2", f"--output_dir={shard_dirs[i]}"),
        cwd=REPO_ROOT, env=dict(environment(), **array_index[i]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
    for process in processes:
      _, stderr = process.communicate(timeout=600)
      self.assertEqual(process.returncode, 0, stderr)
    self.assertEqual(load(shard_dirs[0])["all_layers"]["runs"], [0, 2])
    self.assertEqual(load(shard_dirs[1])["shard"]["index"], 1)
    merged_dir = os.path.join(self.tmp, "merged")
    merge = f"--merge={shard_dirs[1]},{shard_dirs[0]}"
    merged = run("--num_permutations=200", "--seed=7", merge,
                 f"--output_dir={merged_dir}")
    self.assertEqual(merged.returncode, 0, merged.stderr)
    full, merged = load(self.full_dir), load(merged_dir)
    for key in ("all_layers", "layerwise", "tests", "config"):
      self.assertEqual(merged[key], full[key])
    self.assertLen(merged["layerwise"]["train_losses"], 4)
    # Issue 14 (5): what produced the numbers is recorded (the shards' seed
    # and flags), not the merging process's own --seed=7 and defaults.
    self.assertEqual(merged["seed"], 0)
    self.assertEqual(merged["flags"]["seed"], 0)
    self.assertEqual(merged["flags"]["num_runs"], 4)
    self.assertEqual(merged["flags"]["step_scale"], 0.05)
    self.assertNotIn("shard_index", merged["flags"])
    self.assertEqual(merged["trace_counts"], full["trace_counts"])

    # Merging into a directory that holds the shards (here their parent,
    # with --overwrite): refused, the shards untouched.
    refused = run(merge, "--overwrite", f"--output_dir={shards}")
    self.assertEqual(refused.returncode, 1)
    self.assertEqual(refused.stderr.strip().splitlines(), [
        f"error: --output_dir={shards} would replace {shard_dirs[1]}, which "
        "this run reads; choose another --output_dir"])
    self.assertEqual(load(shard_dirs[0])["shard"]["index"], 0)

    # A corrupt shard: a one-line error naming it; nothing else touched.
    broken_dir = os.path.join(self.tmp, "broken")
    shutil.copytree(shard_dirs[1], broken_dir)
    with open(os.path.join(broken_dir, "results.json"), "w") as f:
      f.write('{"shard": {"index": 1')
    bad = run(f"--merge={shard_dirs[0]},{broken_dir}",
              f"--output_dir={os.path.join(self.tmp, 'merged2')}")
    self.assertEqual(bad.returncode, 1)
    self.assertLen(bad.stderr.strip().splitlines(), 1)
    self.assertIn(os.path.join(broken_dir, "results.json"), bad.stderr)
    self.assertIn("not valid JSON", bad.stderr)
    self.assertFalse(os.path.exists(os.path.join(self.tmp, "merged2")))
    self.assertEqual(load(shard_dirs[0])["shard"]["index"], 0)

  def test_an_interrupted_run_resumes(self):
    output_dir = os.path.join(self.tmp, "resumed")
    checkpoints = os.path.join(output_dir + ".partial",
                               scale.CHECKPOINT_DIR)
    process = subprocess.Popen(
        command(*TINY, f"--output_dir={output_dir}"), cwd=REPO_ROOT,
        env=environment(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
      if os.path.isdir(checkpoints) and [
          name for name in os.listdir(checkpoints) if name.endswith(".json")]:
        break
      time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # a crash: no clean-up at all
    process.wait()
    kept = sorted(name for name in os.listdir(checkpoints)
                  if name.endswith(".json"))
    self.assertNotEmpty(kept)
    self.assertLess(len(kept), 4, "the run finished before it was killed")
    self.assertFalse(os.path.exists(output_dir))

    resumed = run(*TINY, f"--output_dir={output_dir}")
    self.assertEqual(resumed.returncode, 0, resumed.stderr)
    self.assertEqual(resumed.stdout.count("kept from"), len(kept))
    full, result = load(self.full_dir), load(output_dir)
    for key in ("all_layers", "layerwise", "tests"):
      self.assertEqual(result[key], full[key])

  def test_ctrl_c_keeps_the_finished_chunks(self):
    output_dir = os.path.join(self.tmp, "interrupted")
    checkpoints = os.path.join(output_dir + ".partial",
                               scale.CHECKPOINT_DIR)
    process = subprocess.Popen(
        command(*TINY, "--workers=1", f"--output_dir={output_dir}"),
        cwd=REPO_ROOT, env=environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # A child of a background job may inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and not (os.path.isdir(checkpoints) and [
        name for name in os.listdir(checkpoints) if name.endswith(".json")]):
      time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    self.assertEqual(process.returncode, 130, stderr)
    self.assertEqual(stderr.strip(), "interrupted")
    self.assertIn("the same command resumes", stdout)
    self.assertNotEmpty([name for name in os.listdir(checkpoints)
                         if name.endswith(".json")])
    self.assertFalse(os.path.exists(output_dir))
    # Resumed, still one worker: the numbers are those of two workers.
    resumed = run(*TINY, "--workers=1", f"--output_dir={output_dir}")
    self.assertEqual(resumed.returncode, 0, resumed.stderr)
    full, result = load(self.full_dir), load(output_dir)
    for key in ("all_layers", "layerwise", "tests"):
      self.assertEqual(result[key], full[key])

  def test_a_damaged_checkpoint_is_refused_on_resume(self):
    """Issue 14 (10): a chunk edited by hand (or cut short) in an
    interrupted run's staging directory: one line naming it and saying what
    to do, nothing published."""
    output_dir = os.path.join(self.tmp, "damaged")
    shutil.copytree(self.full_dir, output_dir + ".partial")
    chunk = scale.checkpoint_path(output_dir + ".partial", "layerwise", 2, 4)
    with open(chunk) as f:
      text = f.read()
    edited = re.sub(r'("accuracies": \[\s*)0\.', r"\g<1>0.9", text, count=1)
    self.assertNotEqual(edited, text)
    with open(chunk, "w") as f:
      f.write(edited)
    refused = run(*TINY, f"--output_dir={output_dir}")
    self.assertEqual(refused.returncode, 1)
    self.assertEqual(refused.stderr.strip().splitlines(), [
        f"error: {chunk}: checksum mismatch, the file was changed after it "
        "was written; delete it to train that chunk again, or pass "
        "--noresume to start the whole run over"])
    self.assertFalse(os.path.exists(output_dir))

  def test_bad_flags(self):
    bad = run(*TINY, "--num_shards=2", "--shard_index=2",
              f"--output_dir={self.tmp}/bad")
    self.assertEqual(bad.returncode, 1)
    self.assertIn("--shard_index must be less", bad.stderr)
    self.assertNotIn("Traceback", bad.stderr)
    self.assertFalse(os.path.exists(f"{self.tmp}/bad.partial"))
    # A job array's index that is no shard index: one line, nothing written.
    array = subprocess.run(
        command(*TINY, "--num_shards=2", f"--output_dir={self.tmp}/bad"),
        cwd=REPO_ROOT, env=dict(environment(), JOB_COMPLETION_INDEX="2"),
        capture_output=True, text=True, timeout=600)
    assert_one_line_error(self, array, "$JOB_COMPLETION_INDEX=2 is not a "
                          "shard index below --num_shards=2")
    self.assertFalse(os.path.exists(f"{self.tmp}/bad.partial"))
    cases = {
        "--train_size=75": "--train_size must be a multiple of --batch_size",
        "--batch_size=30": "--train_size must be a multiple of --batch_size",
        "--learning_rate=inf": "--learning_rate must be finite and > 0",
        "--learning_rate=-1": "--learning_rate must be finite and > 0",
        "--step_scale=nan": "--step_scale must be finite and > 0",
        "--step_scale=101": "--step_scale must be finite and > 0 and at "
                            "most 100",
        "--train_offset=59500": "--train_offset + --train_size must be at "
                                "most 60,000",
        "--strategies=all_layers,all_layers": "--strategies must list one or "
                                              "more of all_layers, layerwise, "
                                              "all_layers_equal, "
                                              "switch_layer3, "
                                              "switch_layers23, each once",
        "--chunk_size=100000": "chunk_size",
        "--num_runs=2000000": "num_runs",
        "--seed=4294967296": "seed",
        # Issue 14 (4): an empty list (an unset shell variable) must not
        # silently start a full training run.
        "--merge=": "--merge needs the shards' output directories",
        "--first_run=-1": "first_run",
        "--strategies=layerwise,switch_layer1": "--strategies must list",
    }
    errors = flag_errors("convergence.__main__",
                         [[flag] for flag in cases] + [["--batch_size=100"]])
    for (flag, message), error in zip(cases.items(), errors):
      self.assertIsNotNone(error, flag)
      self.assertIn(message, error, flag)
    self.assertIsNone(errors[-1])

  def test_batch_size_and_run_eagerly(self):
    """--run_eagerly runs the same steps as plain Python, to the same
    numbers; --batch_size is the images per step (recorded, and it changes
    the numbers). Each trains the first chunk of the full run."""
    first_chunk = ["--num_runs=2", "--strategies=all_layers"]
    expected = load(self.full_dir)["all_layers"]["accuracies"][:2]
    results = {}
    for name, extra in (("eager", ["--run_eagerly"]),
                        ("batch100", ["--batch_size=100"])):
      output_dir = os.path.join(self.tmp, name)
      done = run(*TINY, *first_chunk, *extra, f"--output_dir={output_dir}")
      self.assertEqual(done.returncode, 0, done.stderr)
      results[name] = load(output_dir)
    self.assertEqual(results["eager"]["all_layers"]["accuracies"], expected)
    self.assertEqual(results["batch100"]["config"]["batch_size"], 100)
    self.assertNotEqual(results["batch100"]["all_layers"]["accuracies"],
                        expected)

  def test_helpfull(self):
    shown = run("--helpfull")
    self.assertEqual(shown.returncode, 0, shown.stderr)
    for flag in ("--batch_size", "--learning_rate", "--merge",
                 "--divergence_factor", "--[no]run_eagerly"):
      self.assertIn(flag, shown.stdout)


class WorkersTest(tf.test.TestCase):

  def test_default_workers_without_sched_getaffinity(self):
    """macOS has no os.sched_getaffinity: the CPU count is used."""
    saved = getattr(os, "sched_getaffinity", None)
    try:
      if saved is not None:
        del os.sched_getaffinity
      self.assertEqual(scale.default_workers(),
                       min(os.cpu_count(), scale.MAX_WORKERS))
    finally:
      if saved is not None:
        os.sched_getaffinity = saved


class ShardFilesTest(tf.test.TestCase):
  """scale.read_shards and load_chunk on hand-made files."""

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
    self.config = {"seed": 0, "optimizer": "sgd", "learning_rate": 0.01,
                   "train_size": 1000, "train_offset": 5000,
                   "step_scale": 1.0, "num_runs": 5, "chunk_size": 2}

  def write_shard(self, name, index, num_shards=2, config=None,
                  accuracies=None):
    first, end = scale.shard_range(5, 2, num_shards, index)
    shard = {"config": config or self.config, "strategies": ["all_layers"],
             "shard": {"index": index, "num_shards": num_shards},
             "all_layers": {"runs": [first, end], "accuracies": (
                 accuracies or [0.8 + 0.01 * i for i in range(first, end)])}}
    path = os.path.join(self.dir, name)
    os.makedirs(path)
    with open(os.path.join(path, "results.json"), "w") as f:
      json.dump(shard, f)
    return path

  def test_merges_in_run_order(self):
    second = self.write_shard("b", 1)
    first = self.write_shard("a", 0)
    config, strategies, accuracies, shards = scale.read_shards([second,
                                                               first])
    self.assertEqual([shard["shard"]["index"] for shard in shards], [0, 1])
    self.assertEqual(config, self.config)
    self.assertEqual(strategies, ["all_layers"])
    # 3 chunks (2 + 2 + 1 runs): shard 0 takes 1 chunk, shard 1 takes 2.
    self.assertAllClose(accuracies["all_layers"],
                        [0.80, 0.81, 0.82, 0.83, 0.84])

  def assert_refused(self, paths, *fragments):
    with self.assertRaises(scale.ShardError) as caught:
      scale.read_shards(paths)
    for fragment in fragments:
      self.assertIn(fragment, str(caught.exception))

  def test_missing_duplicate_and_mismatched_shards(self):
    first = self.write_shard("a", 0)
    self.assert_refused([first], "shard 1 of 2 missing")
    again = self.write_shard("a2", 0)
    self.assert_refused([first, again], "are both shard 0 of 2")
    other = self.write_shard("b", 1, config=dict(self.config, seed=3))
    self.assert_refused([first, other], os.path.join(other, "results.json"),
                        "seed 3 (expected 0)")
    three = self.write_shard("c", 1, num_shards=3)
    self.assert_refused([first, three], "one of 3 shards")

  def test_corrupt_files(self):
    first = self.write_shard("a", 0)
    short = self.write_shard("b", 1, accuracies=[0.8])
    self.assert_refused([first, short], os.path.join(short, "results.json"),
                        "list of 3 accuracies")
    wild = self.write_shard("c", 1, accuracies=[0.8, 1.7, 0.8])
    self.assert_refused([first, wild], "in [0, 1]")
    self.assert_refused([first, os.path.join(self.dir, "nowhere")],
                        "no such file")
    unfinished = os.path.join(self.dir, "unfinished")
    os.makedirs(unfinished)
    with open(os.path.join(unfinished, "results.json"), "w") as f:
      json.dump({"all_layers": {}}, f)
    self.assert_refused([first, unfinished], "not the results of a shard")

  def test_a_chunk_from_other_settings_is_refused(self):
    path = os.path.join(self.dir, "all_layers_runs_00000-00001.json")
    metrics = {"accuracies": [0.8, 0.9], "train_losses": [0.01, 0.0]}
    scale.save_chunk(path, self.config, "all_layers", 0, 2, metrics)
    self.assertEqual(scale.load_chunk(path, self.config, "all_layers", 0,
                                      2), metrics)
    with self.assertRaises(scale.ShardError) as caught:
      scale.load_chunk(path, dict(self.config, seed=1), "all_layers", 0, 2)
    for fragment in (path, "seed 0 (expected 1)", "--noresume"):
      self.assertIn(fragment, str(caught.exception))
    with self.assertRaises(scale.ShardError) as caught:
      scale.load_chunk(path, self.config, "layerwise", 0, 2)
    self.assertIn("expected layerwise runs", str(caught.exception))
    with open(path, "w") as f:
      f.write("{")
    with self.assertRaises(scale.ShardError) as caught:
      scale.load_chunk(path, self.config, "all_layers", 0, 2)
    self.assertIn("not valid JSON", str(caught.exception))
    self.assertIn("delete it to train that chunk again",
                  str(caught.exception))

  def test_a_hand_edited_chunk_is_refused(self):
    path = os.path.join(self.dir, "all_layers_runs_00000-00001.json")
    scale.save_chunk(path, self.config, "all_layers", 0, 2,
                     {"accuracies": [0.8, 0.9]})
    with open(path) as f:
      chunk = json.load(f)
    for key, value in (("accuracies", [0.8, 0.95]),
                       ("config", dict(self.config, seed=1)),
                       ("checksum", "0" * 64)):
      with open(path, "w") as f:
        json.dump(dict(chunk, **{key: value}), f)
      with self.assertRaises(scale.ShardError) as caught:
        scale.load_chunk(path, self.config, "all_layers", 0, 2)
      for fragment in (path, "checksum mismatch",
                       "delete it to train that chunk again"):
        self.assertIn(fragment, str(caught.exception))
    with open(path, "w") as f:
      json.dump({k: v for k, v in chunk.items() if k != "checksum"}, f)
    with self.assertRaises(scale.ShardError) as caught:
      scale.load_chunk(path, self.config, "all_layers", 0, 2)
    self.assertIn("missing keys", str(caught.exception))


if __name__ == "__main__":
  tf.test.main()
