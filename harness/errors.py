"""Errors that mean "bad input": the CLI prints them as one line and exits 2.

Kept apart from the modules that raise them so that the CLI can catch them without importing
torch or datasets (start-up time of the CI verbs).
"""


class InputError(ValueError):
    """An input the tool cannot use: reported on one line, exit status 2."""


class UsageError(InputError):
    """Bad command-line input, found before any model loads."""


class DatasetError(InputError):
    """A dataset that is missing, empty, malformed or lacks a column a task needs."""


class ModelError(InputError):
    """A checkpoint that cannot be loaded as PaliGemma."""


def first_few(names: list[str], shown: int = 3) -> str:
    """A list in a one-line message: the first `shown` names, then how many more."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown
                                       else "")


def first_and_more(items: list[str], noun: str) -> str:
    """The first of several like findings, then how many more there are ("(and 2 more tasks like
    it)"), for a one-line message."""
    more = len(items) - 1
    return items[0] + (f" (and {more} more {noun}{'s' * (more > 1)} like it)" if more else "")
