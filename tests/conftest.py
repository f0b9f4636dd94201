"""pytest set-up shared by every test module."""
import tfscratch  # noqa: F401  (first: silences TensorFlow's start-up noise)


def pytest_collection_modifyitems(items):
  # tf.test.TestCase has a helper method named test_session; it is not a test.
  items[:] = [item for item in items if item.name != "test_session"]
