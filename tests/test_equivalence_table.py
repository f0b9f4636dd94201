"""EQUIVALENCE.md stays true: every test it names exists, every public class
and function of the lesson files has a row, every row names something that
exists, and every row of the differentiable components' table compares
forward values and gradients (or, for an optimizer, steps)."""
import ast
import importlib
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LESSON_FILES = ("tfscratch/nn.py", "tfscratch/optimizers.py",
                "rnn_scratch/model.py", "batchnorm_manual/batchnorm.py",
                "batchnorm_manual/model.py", "mnist_probes/model.py",
                "mnist_probes/probe.py", "mnist_probes/pca.py",
                "inversion/model.py", "convergence/network.py",
                "convergence/stacked.py")


def _tables():
  """[(heading, [row cells ...])] of EQUIVALENCE.md's three component
  tables (those under a ## heading whose first column is "component")."""
  with open(os.path.join(REPO, "EQUIVALENCE.md")) as f:
    text = f.read()
  tables = []
  for section in text.split("\n## ")[1:]:
    heading, _, body = section.partition("\n")
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in body.splitlines() if line.startswith("|")]
    if rows and rows[0][0] == "component":
      tables.append((heading, rows[0], rows[2:]))
  return tables


def _names(cell):
  return re.findall(r"`([\w.]+)`", cell)


def _public_definitions(path):
  """module.name of every top-level public class and function."""
  module = path[:-3].replace("/", ".")
  with open(os.path.join(REPO, path)) as f:
    tree = ast.parse(f.read())
  return {f"{module}.{node.name}" for node in tree.body
          if isinstance(node, (ast.FunctionDef, ast.ClassDef))
          and not node.name.startswith("_")}


def _test_exists(test_id):
  path, class_name, method = test_id.split("::")
  full = os.path.join(REPO, path)
  if not os.path.exists(full):
    return False
  with open(full) as f:
    tree = ast.parse(f.read())
  for node in tree.body:
    if isinstance(node, ast.ClassDef) and node.name == class_name:
      return any(isinstance(item, ast.FunctionDef) and item.name == method
                 for item in node.body)
  return False


class EquivalenceTableTest(unittest.TestCase):

  def setUp(self):
    self.tables = _tables()

  def test_three_component_tables_with_whole_rows(self):
    self.assertEqual(len(self.tables), 3)
    for heading, header, rows in self.tables:
      for row in rows:
        self.assertEqual(len(row), len(header), f"{heading}: {row[0]}")

  def test_every_named_test_exists(self):
    count = 0
    for heading, _, rows in self.tables:
      for row in rows:
        for test_id in re.findall(r"`(tests/[\w/]+\.py::\w+::\w+)`",
                                  row[-1]):
          count += 1
          self.assertTrue(_test_exists(test_id), f"{heading}: {test_id}")
    self.assertGreater(count, 30)

  def test_every_lesson_component_has_one_row_and_every_row_exists(self):
    listed = []
    for _, _, rows in self.tables:
      for row in rows:
        listed += _names(row[0])
    self.assertEqual(len(listed), len(set(listed)),
                     "a component is listed twice")
    public = set().union(*(_public_definitions(p) for p in LESSON_FILES))
    self.assertEqual(sorted(public - set(listed)), [],
                     "lesson components without a row in EQUIVALENCE.md")
    for name in listed:
      module, _, attribute = name.rpartition(".")
      self.assertTrue(hasattr(importlib.import_module(module), attribute),
                      f"EQUIVALENCE.md names {name}, which does not exist")

  def test_differentiable_rows_compare_forward_and_gradients(self):
    heading, header, rows = self.tables[0]
    compared = header.index("compared")
    for row in rows:
      text = row[compared]
      self.assertTrue(
          ("forward" in text and "gradients" in text) or
          text.startswith("steps") or "no gradient flows" in text,
          f"{row[0]}: {text}")
      self.assertTrue(re.search(r"`tests/", row[-1]), row[0])


if __name__ == "__main__":
  unittest.main()
