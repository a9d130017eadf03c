"""The one exception the CLI turns into a clear message and a non-zero exit."""


class DeployError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""
