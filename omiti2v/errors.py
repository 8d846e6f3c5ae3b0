"""Errors the user fixes before a run can start; runners print their message alone, not a traceback."""


class SetupError(Exception):
    """Missing weights or data, or an invalid benchmark: the message says what to do and which key to set."""
