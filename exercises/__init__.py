"""Exercises: write the key pieces of the lessons yourself, then run the
SAME equivalence checks the test suite runs on the packages' own code.

    make exercise                  lists the exercises
    make exercise NAME=batchnorm   checks exercises/batchnorm.py

Each exercise file holds stubs: docstring and equations, body
``raise NotImplementedError``. ``run`` loads a file and passes it, as the
implementation, to the ``check_*`` functions of the package's
tests/test_equivalence_*.py (which the tests call with the package itself).
See exercises/README.md.
"""
import importlib
import importlib.util
import os
import traceback
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))


class Exercise(NamedTuple):
  functions: tuple   # what the learner writes
  package: str       # the module whose functions of those names are ours
  checks: str        # the test module holding the check_* functions
  check_names: tuple


# In reading order (the root README's "Read the code").
EXERCISES = {
    "optimizers": Exercise(("adagrad_update", "adam_update"),
                           "tfscratch.optimizers",
                           "tests.test_equivalence_tfscratch",
                           ("check_adagrad_update", "check_adam_update")),
    "rnn": Exercise(("unroll",), "rnn_scratch.model",
                    "tests.test_equivalence_rnn_scratch", ("check_unroll",)),
    "batchnorm": Exercise(("normalize", "moving_average"),
                          "batchnorm_manual.batchnorm",
                          "tests.test_equivalence_batchnorm_manual",
                          ("check_normalize", "check_moving_average")),
    "probe": Exercise(("objective_and_gradient",), "mnist_probes.probe",
                      "tests.test_equivalence_mnist_probes",
                      ("check_objective",)),
    "squash": Exercise(("logit", "squash"), "inversion.model",
                       "tests.test_equivalence_inversion",
                       ("check_logit", "check_squash")),
    "stacked": Exercise(("stacked_logits",), "convergence.stacked",
                        "tests.test_equivalence_convergence",
                        ("check_stacked",)),
}


class Result(NamedTuple):
  check: str
  status: str    # PASS, FAIL or TODO (a stub not written yet)
  message: str   # one line


def path_of(name):
  return os.path.join(HERE, f"{name}.py")


def load(path):
  """The learner's file as a module (not imported by name: it need not be
  on the path, and a fresh load sees the latest edit)."""
  spec = importlib.util.spec_from_file_location(
      f"exercise_{os.path.basename(path)[:-3]}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _where(error, path):
  """(function, line) of the deepest frame of ``error`` inside ``path``."""
  found = None
  for frame, line in traceback.walk_tb(error.__traceback__):
    if os.path.abspath(frame.f_code.co_filename) == os.path.abspath(path):
      found = (frame.f_code.co_name, line)
  return found


def _relative(path):
  return os.path.relpath(path, os.path.dirname(HERE))


def run(name, implementation, path):
  """Runs exercise ``name``'s checks on ``implementation`` (a module with
  the exercise's functions; ``path`` is its file, for the messages).

  Returns:
    One Result per check. A stub still raising NotImplementedError gives
    TODO with a message naming the function, never a traceback.
  """
  exercise = EXERCISES[name]
  checks = importlib.import_module(exercise.checks)
  results = []
  for check_name in exercise.check_names:
    check = getattr(checks, check_name)
    summary = " ".join(check.__doc__.strip().split("\n\n")[0].split())
    try:
      check(implementation)
    except NotImplementedError as error:
      where = _where(error, path)
      function = where[0] if where else "a function"
      results.append(Result(check_name, "TODO", (
          f"{_relative(path)}: {function}() is not implemented yet — replace "
          "`raise NotImplementedError` with the equations in its docstring")))
    except AssertionError as error:
      lines = [line.strip() for line in str(error).splitlines()
               if line.strip()]
      results.append(Result(check_name, "FAIL", " / ".join(lines[:4])))
    except Exception as error:  # pylint: disable=broad-except
      where = _where(error, path)
      at = f" (in {where[0]}(), {_relative(path)} line {where[1]})" if where else ""
      first = str(error).strip().splitlines()[0] if str(error).strip() else ""
      results.append(Result(check_name, "FAIL",
                            f"{type(error).__name__}: {first}{at}"))
    else:
      results.append(Result(check_name, "PASS", summary))
  return results
