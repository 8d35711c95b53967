"""How the ``skplice`` command fails: exit statuses, and errors that print as one message."""

from skplice.exceptions import ImageLoadError

#: Exit status of a failure while running (download, missing package, write error).
EXIT_FAILURE = 1
#: Exit status of invalid arguments or input files (argparse uses it too).
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure reported as a message on stderr and an exit status, without a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(CommandError):
    """Invalid arguments or input files: exit status 2."""

    exit_code = EXIT_USAGE


def describe(exc):
    """The message and exit status of an exception that ended a command."""
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, ImageLoadError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, ImportError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, (ValueError, TypeError, LookupError)):
        return str(exc), EXIT_USAGE
    if isinstance(exc, OSError):
        return str(exc), EXIT_FAILURE
    return (
        f"{type(exc).__name__}: {exc} (an unexpected error: rerun with --debug for the "
        "traceback, and please report it)",
        EXIT_FAILURE,
    )


def exit_status(code):
    """The exit status of argparse's ``SystemExit`` code."""
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_FAILURE
