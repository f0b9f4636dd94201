"""The exercises (exercises/, ``make exercise NAME=...``) proved both ways:
every stub fails each of its checks with one clear line naming the function
to write (never a traceback), and a correct solution passes the same checks
that tests/test_equivalence_*.py run on the packages' own functions."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import contextlib
import importlib
import inspect
import io
import os
import re

import tensorflow as tf

import exercises
from exercises import __main__ as exercises_main


def _solution_file(directory, name, body):
  path = os.path.join(directory, f"{name}.py")
  with open(path, "w") as f:
    f.write(body)
  return path


class StubTest(tf.test.TestCase):

  def test_every_stub_names_each_unwritten_function(self):
    for name, exercise in exercises.EXERCISES.items():
      path = exercises.path_of(name)
      results = exercises.run(name, exercises.load(path), path)
      self.assertEqual([r.check for r in results], list(exercise.check_names))
      named = set()
      for result in results:
        self.assertEqual(result.status, "TODO", msg=(name, result))
        match = re.fullmatch(
            rf"exercises/{name}\.py: (\w+)\(\) is not implemented yet — "
            r"replace `raise NotImplementedError` with the equations in its "
            r"docstring", result.message)
        self.assertIsNotNone(match, msg=result.message)
        named.add(match.group(1))
      self.assertEqual(named, set(exercise.functions), msg=name)

  def test_stubs_take_the_arguments_of_the_packages_functions(self):
    """A learner's function can stand in for the package's: same names,
    same parameters; and the stubs hold no solution."""
    for name, exercise in exercises.EXERCISES.items():
      stub = exercises.load(exercises.path_of(name))
      package = importlib.import_module(exercise.package)
      for function in exercise.functions:
        ours = getattr(package, function)
        theirs = getattr(stub, function)
        self.assertEqual(list(inspect.signature(theirs).parameters),
                         list(inspect.signature(ours).parameters),
                         msg=f"{name}.{function}")
        self.assertRegex(inspect.getsource(theirs),
                         r'"""\n  raise NotImplementedError\n$')


class SolutionTest(tf.test.TestCase):

  def test_a_correct_solution_passes_and_a_wrong_one_fails(self):
    """The package's own functions, loaded from a learner's file, pass
    through the runner; a moving average with momentum on the new value
    (PyTorch's convention) fails with one line."""
    directory = self.get_temp_dir()
    right = _solution_file(
        directory, "right",
        "from batchnorm_manual.batchnorm import normalize, moving_average\n")
    results = exercises.run("batchnorm", exercises.load(right), right)
    self.assertEqual([r.status for r in results], ["PASS", "PASS"],
                     msg=results)
    wrong = _solution_file(directory, "wrong", (
        "from batchnorm_manual.batchnorm import normalize\n"
        "def moving_average(moving, batch_statistic, momentum):\n"
        "  return moving * (1 - momentum) + batch_statistic * momentum\n"))
    results = exercises.run("batchnorm", exercises.load(wrong), wrong)
    self.assertEqual([r.status for r in results], ["PASS", "FAIL"])
    self.assertRegex(results[1].message,
                     r"^moving_mean after step 1: \d+ of 5 values differ")
    self.assertNotIn("\n", results[1].message)

  def test_an_error_in_a_solution_is_one_line_naming_where(self):
    path = _solution_file(self.get_temp_dir(), "typo", (
        "from inversion.model import squash\n"
        "def logit(p):\n"
        "  return tf.math.log(p)  # tf never imported\n"))
    results = exercises.run("squash", exercises.load(path), path)
    self.assertEqual(results[0].status, "FAIL")
    self.assertRegex(results[0].message,
                     r"^NameError: name 'tf' is not defined \(in logit\(\), "
                     r".*typo\.py line 3\)$")

  def test_the_command_lists_the_exercises_and_reports_each_check(self):
    for argv, code in (([], 0), (["nonsense"], 2), (["squash"], 1)):
      out, err = io.StringIO(), io.StringIO()
      with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        self.assertEqual(exercises_main.main(argv), code, msg=argv)
      if argv == ["squash"]:
        self.assertIn("TODO  check_squash: exercises/squash.py: squash() is "
                      "not implemented yet", out.getvalue())
        self.assertIn("0 of 2 checks pass.", out.getvalue())
      else:
        for name in exercises.EXERCISES:
          self.assertIn(f"exercises/{name}.py", out.getvalue())
      if argv == ["nonsense"]:
        self.assertEqual(err.getvalue(),
                         "error: no exercise named 'nonsense'\n")


if __name__ == "__main__":
  tf.test.main()
