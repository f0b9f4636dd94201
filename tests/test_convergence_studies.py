"""Issue 12's additions, in process and on tiny schedules: the paired starts,
the strategy switch (a redrawn layer 3, step by step against network.py),
the training loss read at the end, the job array's shard index, and the
studies' verdicts."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import numpy as np
import tensorflow as tf

from convergence import network
from convergence import scale
from convergence import stacked
from convergence import studies
from convergence import train
from tests.test_convergence_model import LEARNING_RATES
from tests.test_convergence_model import assert_same_weights
from tests.test_convergence_model import config_for
from tests.test_convergence_model import small_data
from tests.test_convergence_model import train_alone


class StrategySwitchTest(tf.test.TestCase):

  def test_switch_redraws_layer3_and_trains_on(self):
    """switch_layer3, shortened: 3 steps on head 3, then W3, b3, V3, c3
    replaced by network ``run`` of REDRAW_STREAM (layers 1-2 kept), then 4
    more steps with a fresh optimizer and the rate drop at 2. Against
    network.py's network doing the same step by step. With --paired, its
    start is all_layers' network ``run``."""
    data = small_data()
    first, second = train.Phase(3, 3, None), train.Phase(3, 4, 2, redraw=3)
    config = config_for("sgd", paired=True)
    stack = train.build(config, data, "switch_layer3", 2, (first, second))
    together = train.train_runs(config, data, "switch_layer3", [4, 5],
                                stack=stack, splits=("train",),
                                losses=("train",))
    for n, run in ((0, 4),):
      start = stacked.run_weights(0, train.STREAMS["all_layers"], run)
      alone = train_alone(data, start, "sgd", (first,))
      kept = alone.weights()
      fresh = stacked.run_weights(0, train.REDRAW_STREAM, run)
      redrawn = {name: fresh[name] if name[1] == "3" else kept[name]
                 for name in kept}
      self.assertFalse(np.allclose(redrawn["W3"], kept["W3"]))
      alone = train_alone(data, redrawn, "sgd", (second,))
      assert_same_weights(self, stack.networks.network_weights(n),
                          alone.weights(), "sgd", LEARNING_RATES["sgd"])
      # The loss read at the end is head 3's mean cross-entropy per image.
      expected = alone.loss(data.train.images, data.train.labels, 3)
      self.assertAllClose(together["train_loss"][n],
                          expected.numpy() / len(data.train), rtol=1e-5)
    self.assertEqual(train.trace_counts(stack)["loss_sums"], 1)

  def test_paired_streams_and_controls(self):
    paired, unpaired = train.Config(paired=True), train.Config()
    for strategy in train.ALL_STRATEGIES:
      self.assertEqual(train.stream(paired, strategy), 0)
    self.assertLen({train.stream(unpaired, s) for s in train.ALL_STRATEGIES}
                   | {train.REDRAW_STREAM}, 6)
    # The equal-step control: layer-wise's 1,400 steps, the drop at 3/4.
    self.assertEqual(train.total_steps("all_layers_equal"),
                     train.total_steps("layerwise"))
    self.assertEqual(train.phases("all_layers_equal", 2.0),
                     (train.Phase(3, 2800, 2100),))
    self.assertEqual(train.phases("switch_layers23", 0.5)[1],
                     train.Phase(3, 500, 375, redraw=2))
    self.assertEqual(list(train.STRATEGIES), ["all_layers", "layerwise"])

  def test_assign_layers_keeps_the_layers_below(self):
    old = stacked.initial_weights(0, 0, range(2))
    new = stacked.initial_weights(0, train.REDRAW_STREAM, range(2))
    networks = stacked.StackedNetworks(old)
    networks.assign_layers(new, 2)
    for n in range(2):
      weights = networks.network_weights(n)
      for name, value in weights.items():
        source = new if name[1] in "23" else old
        expected = source[name][:, n] if name == "W1" else source[name][n]
        self.assertAllEqual(value, expected, msg=name)
    with self.assertRaises(ValueError):
      networks.assign_layers(new, 1)


class ShardIndexTest(tf.test.TestCase):

  def test_from_the_job_array(self):
    find = scale.shard_index_from_environment
    self.assertIsNone(find({}))
    self.assertEqual(find({"SLURM_ARRAY_TASK_ID": "3"}),
                     (3, "SLURM_ARRAY_TASK_ID"))
    self.assertEqual(find({"JOB_COMPLETION_INDEX": "0"}),
                     (0, "JOB_COMPLETION_INDEX"))
    for bad in ("-1", "x", ""):
      with self.assertRaisesRegex(ValueError, "pass --shard_index"):
        find({"SLURM_ARRAY_TASK_ID": bad})

  def test_chunks_from_a_first_run(self):
    self.assertEqual(scale.chunk_ranges(5, 2, first_run=10),
                     [(10, 12), (12, 14), (14, 15)])
    self.assertEqual(scale.shard_range(5, 2, 2, 1, first_run=10), (12, 15))


class VerdictTest(tf.test.TestCase):

  def test_interval_decides(self):
    self.assertEqual(studies.verdict(0.001, 0.003), "all layers ahead")
    self.assertEqual(studies.verdict(-0.003, -0.001), "layer-wise ahead")
    self.assertEqual(studies.verdict(-0.001, 0.002), "inside the noise")
    cell = studies.compare_cell([0.9, 0.91, 0.92], [0.8, 0.81, 0.82], 0)
    self.assertAllClose(cell["difference"], 0.1)
    self.assertEqual(cell["verdict"], "all layers ahead")
    self.assertTrue(studies.is_scale("2") and not studies.is_scale("0"))


if __name__ == "__main__":
  tf.test.main()
