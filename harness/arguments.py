"""argparse value types of the verbs' numeric flags, and the --bootstrap / --seed pair.

A number that cannot mean anything (`--limit 0`, `--threshold 2`, `--qps nan`) is refused while
the command line is parsed: one line naming the flag, exit 2, before any model, data or server is
touched. A threshold above every score would otherwise flag nothing and read as a clean audit.
"""

from __future__ import annotations

import argparse
import math

from paligemma_eval.harness.scores import DEFAULT_RESAMPLES, DEFAULT_SEED


def _whole(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def _finite(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    return number


def positive_int(value: str) -> int:
    number = _whole(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


def count(value: str) -> int:
    """0 or more (--bootstrap 0: no intervals; --flips 0: list none)."""
    number = _whole(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {number}")
    return number


def positive_float(value: str) -> float:
    number = _finite(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def fraction(value: str) -> float:
    """A share, 0 to 1 (a coverage, an error rate)."""
    number = _finite(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def score_threshold(value: str) -> float:
    """A flag threshold on scores in [0, 1]: above 0 (0 flags every text), at most 1."""
    number = _finite(value)
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1 (scores are "
                                         f"probabilities), got {value}")
    return number


def port(value: str) -> int:
    number = _whole(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535 (0: any free port), got {number}")
    return number


def add_bootstrap_args(parser: argparse.ArgumentParser, what: str = "intervals") -> None:
    """--bootstrap R and --seed S, as every verb that draws intervals takes them."""
    parser.add_argument("--bootstrap", type=count, default=DEFAULT_RESAMPLES,
                        help=f"resamples for {what} (0: none; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="bootstrap seed (default: %(default)s)")
