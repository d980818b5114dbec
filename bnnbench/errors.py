"""User-facing errors: the CLI prints these as one line, without a traceback."""


class BnnbenchError(Exception):
    """A problem with the user's input: the message names the problem and the fix."""
