"""The one exception type a user can cause; the CLI prints its message on one line and exits 2."""


class MixPathError(Exception):
    """A user-facing error: bad input, missing data, a corrupt file. The message is one line."""
