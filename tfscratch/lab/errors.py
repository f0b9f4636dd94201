"""Exceptions that end a run with a clear one-line message, not a traceback."""


class ScratchError(Exception):
  """A problem the user can fix: bad data, bad output directory, diverged run."""


class DataError(ScratchError):
  """A data file is missing, truncated or not what its header says."""


class NonFiniteError(ScratchError):
  """Training produced NaN or infinity; the message names the step."""


class DivergenceError(ScratchError):
  """The loss stayed far above its starting value: the run blew up."""


class OutputDirError(ScratchError):
  """The output directory cannot be used without losing earlier results."""
