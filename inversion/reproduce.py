"""Reproduces the blog's numbers: runs ``python -m inversion`` at blog scale
(its defaults), then checks the result against the post and prints the
blog-vs-ours table.

  python -m inversion.reproduce --output_dir runs/reproduce/inversion \\
      --overwrite [--figures_dir inversion/figures]

Targets (R2RT, "Inverting a Neural Net"): test accuracy about 95% (the post
printed 0.9521), and each of the nine generated digits' codes more than
99.5% confident of its class (the post printed 0.9961 to 0.9976). The table
is also written to ``reproduction.md`` in the run directory; a missed target
ends the program with exit status 1 after the table.
"""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import json
import os
import shutil
import subprocess
import sys

from absl import flags

from tfscratch.lab import cli
from tfscratch.lab.errors import ScratchError
from tfscratch.lab.files import write_atomically

FLAGS = flags.FLAGS
flags.DEFINE_string("figures_dir", None, "If set, copy the run's PNG figures "
                    "here (inversion/figures holds the README's copies).")
cli.define_run_flags(default_output_dir="runs/reproduce/inversion")
cli.define_data_dir_flag()

# The numbers the post printed (Final Accuracy, np.max(fakes, axis=1)).
BLOG_TEST_ACCURACY = 0.9521
BLOG_GENERATED_CONFIDENCE = [0.99675035, 0.99740452, 0.99649602, 0.99652439,
                             0.99734575, 0.99607605, 0.99735802, 0.99755549,
                             0.99680138]
ACCURACY_RANGE = (0.94, 0.96)  # "about 95%"
CONFIDENCE_TARGET = 0.995
FIGURES = ["inverse_projections.png", "generated_digits.png", "features.png",
           "reconstructions.png", "class_images.png", "blog_examples.png"]


def table(results):
  """The blog-vs-ours rows as a Markdown table."""
  generated = results["generated_confidence"]
  learned = results["reconstruction"]["learned_inverse"]
  gradient = results["reconstruction"]["gradient_inverse"]
  count = results["reconstruction_images"]
  rows = [
      ("test accuracy", f"{BLOG_TEST_ACCURACY:.4f}",
       f"{results['test_accuracy']:.4f}"),
      ("generated digits 1-9: softmax confidence (min - max)",
       f"{min(BLOG_GENERATED_CONFIDENCE):.4f} - "
       f"{max(BLOG_GENERATED_CONFIDENCE):.4f}",
       f"{min(generated):.4f} - {max(generated):.4f}"),
      (f"learned inverse: mean L1 error per pixel ({count} test images)", "-",
       f"{learned['l1_error']:.4f}"),
      ("learned inverse: classified as the original", "-",
       f"{learned['class_agreement']:.1%}"),
      ("gradient inverse: mean L1 error per pixel", "-",
       f"{gradient['l1_error']:.4f}"),
      ("(baseline) all-black image: mean L1 error per pixel", "-",
       f"{results['l1_error_baselines']['black_image']:.4f}"),
      ("gradient inverse: classified as the original", "-",
       f"{gradient['class_agreement']:.1%}"),
  ]
  # "The 9th sample and the 3rd to last sample each get transformed to a 6"
  # (by eye; the post gives no class).
  for name, blog_place in (("test_image_8", "9th"),
                           ("test_image_33", "third-to-last")):
    example = results["blog_examples"][name]
    rows.append((f"{name.replace('_', ' ')} (the post's {blog_place}, label "
                 f"{example['label']}): network's class of the image / of "
                 "its learned inverse", "- / looks like a 6",
                 f"{example['original']['class']} / "
                 f"{example['learned_inverse']['class']}"))
  lines = ["| metric | blog | ours |", "| --- | --- | --- |"]
  lines += [f"| {metric} | {blog} | {ours} |" for metric, blog, ours in rows]
  return "\n".join(lines) + "\n"


def missed_targets(results):
  """Descriptions of the targets the run missed (empty if none)."""
  missed = []
  low, high = ACCURACY_RANGE
  if not low <= results["test_accuracy"] <= high:
    missed.append(f"test accuracy {results['test_accuracy']:.4f} is outside "
                  f"[{low}, {high}]")
  for digit, confidence in enumerate(results["generated_confidence"], 1):
    if not confidence > CONFIDENCE_TARGET:
      missed.append(f"generated digit {digit}: confidence {confidence:.4f} "
                    f"is not above {CONFIDENCE_TARGET}")
  return missed


def main(argv):
  del argv
  # The run flags reproduce shares with the run are passed on; the
  # experiment's own flags keep their defaults, the blog's settings.
  command = [sys.executable, "-m", "inversion",
             f"--output_dir={FLAGS.output_dir}", f"--seed={FLAGS.seed}",
             f"--divergence_factor={FLAGS.divergence_factor}",
             f"--divergence_patience={FLAGS.divergence_patience}"]
  if FLAGS.overwrite:
    command.append("--overwrite")
  if FLAGS.run_eagerly:
    command.append("--run_eagerly")
  if FLAGS.data_dir:
    command.append(f"--data_dir={FLAGS.data_dir}")
  print("running: " + " ".join(command), flush=True)
  if subprocess.run(command, check=False).returncode != 0:
    raise ScratchError("the blog-scale run failed (its error is above)")
  with open(os.path.join(FLAGS.output_dir, "results.json")) as f:
    results = json.load(f)

  markdown = table(results)
  print(markdown, flush=True)
  write_atomically(os.path.join(FLAGS.output_dir, "reproduction.md"),
                   lambda f: f.write(markdown.encode("utf-8")))
  if FLAGS.figures_dir:
    os.makedirs(FLAGS.figures_dir, exist_ok=True)
    for name in FIGURES:
      shutil.copyfile(os.path.join(FLAGS.output_dir, name),
                      os.path.join(FLAGS.figures_dir, name))
    print(f"figures copied to {FLAGS.figures_dir}", flush=True)
  missed = missed_targets(results)
  if missed:
    raise ScratchError("reproduction missed the blog's targets: " +
                       "; ".join(missed))
  print("reproduction: all targets met", flush=True)


if __name__ == "__main__":
  cli.run(main)
