"""The shared package: run outputs, progress, figures, building blocks, seeds."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import io
import json
import os
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from tfscratch import nn
from tfscratch.errors import NonFiniteError, OutputDirError
from tfscratch.figures import image_grid, plt
from tfscratch.outputs import RunOutputs, write_json
from tfscratch.progress import Progress, format_duration
from tfscratch.seeding import set_seed


class RunOutputsTest(tf.test.TestCase):

  def test_finish_writes_results_and_moves_staging_into_place(self):
    output_dir = os.path.join(self.get_temp_dir(), "fresh")
    outputs = RunOutputs(output_dir)
    self.assertFalse(os.path.exists(output_dir))
    figure, axes = plt.subplots()
    axes.plot([0, 1])
    outputs.save_figure(figure, "curve.png")
    outputs.finish({"accuracy": np.float32(0.5)})
    self.assertFalse(os.path.exists(output_dir + ".partial"))
    with open(os.path.join(output_dir, "results.json")) as f:
      written = json.load(f)
    self.assertEqual(written["accuracy"], 0.5)
    for key in ("flags", "seed", "versions", "wall_time_seconds"):
      self.assertIn(key, written)
    self.assertEqual(written["versions"]["tensorflow"], tf.__version__)
    with open(os.path.join(output_dir, "curve.png"), "rb") as f:
      self.assertEqual(f.read(4), b"\x89PNG")

  def test_existing_run_needs_overwrite_and_survives_a_failed_run(self):
    output_dir = os.path.join(self.get_temp_dir(), "existing")
    RunOutputs(output_dir).finish({"run": 1})
    with self.assertRaisesRegex(OutputDirError, "--overwrite"):
      RunOutputs(output_dir)
    RunOutputs(output_dir, overwrite=True).write_json("partial.json", {})
    # The second run never finished: the first is untouched.
    with open(os.path.join(output_dir, "results.json")) as f:
      self.assertEqual(json.load(f)["run"], 1)
    RunOutputs(output_dir, overwrite=True).finish({"run": 3})
    with open(os.path.join(output_dir, "results.json")) as f:
      self.assertEqual(json.load(f)["run"], 3)
    self.assertFalse(os.path.exists(os.path.join(output_dir, "partial.json")))

  def test_resume_keeps_the_staging_directory(self):
    output_dir = os.path.join(self.get_temp_dir(), "resumed")
    RunOutputs(output_dir).write_json("chunk_0.json", {"done": True})
    self.assertFalse(os.path.exists(
        RunOutputs(output_dir).path("chunk_0.json")))
    RunOutputs(output_dir).write_json("chunk_0.json", {"done": True})
    self.assertTrue(os.path.exists(
        RunOutputs(output_dir, resume=True).path("chunk_0.json")))

  def test_failed_write_leaves_the_old_file(self):
    path = os.path.join(self.get_temp_dir(), "data.json")
    write_json(path, {"a": 1})
    with self.assertRaises(TypeError):
      write_json(path, {"a": object()})
    with open(path) as f:
      self.assertEqual(json.load(f), {"a": 1})
    self.assertEqual(os.listdir(self.get_temp_dir()).count("data.json"), 1)
    self.assertFalse([name for name in os.listdir(self.get_temp_dir())
                      if name.endswith(".tmp")])


class ProgressTest(tf.test.TestCase):

  def test_prints_step_loss_rate_and_eta(self):
    progress = Progress(total_steps=10, every=5, label="plain")
    with mock.patch("sys.stdout", new_callable=io.StringIO) as stdout:
      for step in range(1, 11):
        progress.update(step, 1.0 / step)
    lines = stdout.getvalue().splitlines()
    self.assertLen(lines, 2)
    self.assertRegex(lines[0], r"^plain step  5/10  loss 0\.2000  .* steps/s"
                     r"  ETA \d+:\d\d:\d\d$")

  def test_non_finite_loss_names_the_step(self):
    progress = Progress(total_steps=10)
    progress.update(1, 0.5)
    with self.assertRaisesRegex(NonFiniteError, "nan at step 2"):
      progress.update(2, float("nan"))
    with self.assertRaisesRegex(NonFiniteError, "inf at step 3"):
      progress.update(3, np.float32("inf"))

  def test_format_duration(self):
    self.assertEqual(format_duration(3725.4), "1:02:05")


class BuildingBlocksTest(tf.test.TestCase):

  def test_dense_equals_keras_dense(self):
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(5, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    x = tf.constant(rng.normal(size=(4, 5)), tf.float32)
    reference = keras.layers.Dense(3, activation="tanh")
    reference.build((None, 5))
    reference.set_weights([weights, bias])
    self.assertAllClose(nn.Dense(weights, bias, tf.tanh)(x), reference(x),
                        rtol=1e-6, atol=1e-6)
    self.assertAllClose(nn.Dense(weights)(x), x @ weights)

  def test_truncated_normal_is_truncated_and_seeded(self):
    draw = nn.truncated_normal((20000,), stddev=0.1, seed=(1, 2))
    self.assertLessEqual(np.abs(draw).max(), 0.2)
    # A N(0, 1) cut at 2 sd has sd 0.880.
    self.assertAllClose(np.std(draw), 0.088, atol=0.002)
    self.assertAllEqual(draw, nn.truncated_normal((20000,), 0.1, (1, 2)))

  def test_losses_and_accuracy(self):
    logits = tf.constant([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    labels = tf.constant([0, 0, 0])
    log_softmax = np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    self.assertAllClose(nn.summed_cross_entropy(logits, labels),
                        -log_softmax[:, 0].sum())
    self.assertAllClose(nn.accuracy(logits, labels), 2 / 3)

  def test_ordered_batch_walks_in_order_and_wraps(self):
    images = np.arange(10)[:, None]
    labels = np.arange(10)
    _, batch = nn.ordered_batch(images, labels, batch_size=4, step=0)
    self.assertAllEqual(batch, [0, 1, 2, 3])
    _, batch = nn.ordered_batch(images, labels, batch_size=4, step=2)
    self.assertAllEqual(batch, [8, 9, 0, 1])

  def test_image_grid(self):
    images = np.stack([np.full(4, value) for value in (0.1, 0.2, 0.3)])
    grid = image_grid(images, rows=2, columns=2, height=2, width=2)
    self.assertEqual(grid.shape, (5, 5))
    self.assertAllClose(grid[0, :2], [0.1, 0.1])
    self.assertAllClose(grid[0, 3:], [0.2, 0.2])
    self.assertAllClose(grid[3:, 0], [0.3, 0.3])
    self.assertAllClose(grid[2], np.ones(5))
    self.assertAllClose(grid[3:, 3:], np.ones((2, 2)))


class SeedingTest(tf.test.TestCase):

  def test_same_seed_same_draws(self):
    draws = []
    for _ in range(2):
      set_seed(7)
      draws.append((np.random.rand(3), tf.random.uniform([3]).numpy()))
    self.assertAllEqual(draws[0][0], draws[1][0])
    self.assertAllEqual(draws[0][1], draws[1][1])


if __name__ == "__main__":
  tf.test.main()
