"""The one base class of every error tensorweave reports to users.

Each area raises its own subclass (ConfigError, ISAError, SimError, ...) with a message that names
the field, line, node or instruction at fault; the CLI prints such errors as one line, exit code 2.
"""


class TensorweaveError(Exception):
    """A problem with the user's input or environment, explained in its message."""
