"""Errors the user fixes before a run can start; runners print their message alone, not a traceback."""

import functools
import sys


class SetupError(Exception):
    """Missing weights or data, or an invalid benchmark: the message says what to do and which key to set."""


def exit_on_setup_error(func):
    """Runner decorator: a SetupError ends the process with its message and exit code 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper
