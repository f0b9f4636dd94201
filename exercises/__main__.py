"""``python -m exercises NAME`` (``make exercise NAME=...``): runs the
equivalence checks of exercise NAME on exercises/NAME.py and prints each
check's outcome; exits 0 only when every check passes. Without a NAME (or
with an unknown one) it lists the exercises."""
import sys

import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)

import exercises


def _list():
  print("Exercises, in reading order (make exercise NAME=<name>):")
  for name, exercise in exercises.EXERCISES.items():
    print(f"  {name:<11} exercises/{name}.py: "
          f"{', '.join(f + '()' for f in exercise.functions)}")
  print("See exercises/README.md.")


def main(argv):
  if len(argv) != 1 or argv[0] not in exercises.EXERCISES:
    if argv and argv[0]:
      print(f"error: no exercise named {argv[0]!r}", file=sys.stderr)
      _list()
      return 2
    _list()
    return 0
  name = argv[0]
  path = exercises.path_of(name)
  try:
    implementation = exercises.load(path)
  except Exception as error:  # pylint: disable=broad-except
    print(f"error: exercises/{name}.py does not load: "
          f"{type(error).__name__}: {error}", file=sys.stderr)
    return 1
  print(f"exercises/{name}.py against the checks in "
        f"{exercises.EXERCISES[name].checks.replace('.', '/')}.py:")
  results = exercises.run(name, implementation, path)
  for result in results:
    print(f"  {result.status}  {result.check}: {result.message}")
  passed = sum(result.status == "PASS" for result in results)
  print(f"{passed} of {len(results)} checks pass.")
  return 0 if passed == len(results) else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
