"""One-line errors for the command-line tools (`train`, `export`, `visualize`, `predict`).

Every check of a user's input raises an error naming the flag, field or path; the
commands turn those into one line on stderr instead of a traceback. Imports nothing
heavy, so `gsa_keras.predict` stays free of the Model Garden.
"""

import contextlib

# The errors a user's input can cause, reported as one line by `command_line_errors`.
USER_ERRORS = (ValueError, TypeError, KeyError, FileNotFoundError)


@contextlib.contextmanager
def command_line_errors(command: str, errors=USER_ERRORS):
  """Turns a user's mistake inside the block into one line on stderr and exit code 1.

  `SystemExit("<command>: error: <message>")`, without a traceback, for the errors of
  `errors` (by default `USER_ERRORS`, each of ours naming the flag or field; a command
  may pass its own, e.g. training's full disk, whose message is written for the user).
  """
  try:
    yield
  except errors as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    raise SystemExit(f"{command}: error: {message}") from None
