"""Checks on a finished command-line run, shared by the CLI tests."""


def assert_one_line_error(test, result, *fragments):
  """``result`` (a subprocess.CompletedProcess) ended as a user error should:
  exit code 1 and exactly one line on stderr, ``error: ...``, holding every
  fragment."""
  test.assertEqual(result.returncode, 1, result.stderr)
  lines = result.stderr.strip().splitlines()
  test.assertEqual(len(lines), 1, result.stderr)
  test.assertTrue(lines[0].startswith("error: "), lines[0])
  for fragment in fragments:
    test.assertIn(fragment, lines[0])
