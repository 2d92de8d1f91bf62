"""argparse value types of the verbs' numeric flags, and the --bootstrap / --seed pair.

A number that cannot mean anything (`--limit 0`, `--threshold 2`, `--qps nan`) is refused while
the command line is parsed: one line naming the flag, exit 2, before any model, data or server is
touched. A threshold above every score would otherwise flag nothing and read as a clean audit.
"""

from __future__ import annotations

import argparse
import math
import urllib.parse
from collections.abc import Callable
from typing import Any

from paligemma_eval.harness.scores import DEFAULT_RESAMPLES, DEFAULT_SEED


def _number(value: str, kind: type, accept: Callable[[Any], bool], rule: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not {'a whole number' if kind is int else 'a number'}: {value!r}") from None
    if kind is float and not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
    if not accept(number):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return number


def positive_int(value: str) -> int:
    return _number(value, int, lambda n: n >= 1, "a positive integer")


def count(value: str) -> int:
    """0 or more (--bootstrap 0: no intervals; --flips 0: list none)."""
    return _number(value, int, lambda n: n >= 0, "0 or more")


def seed(value: str) -> int:
    """A random seed: numpy's generators take 0 or more (a negative one fails only after a run
    has generated, when its intervals are drawn)."""
    return _number(value, int, lambda n: n >= 0, "0 or more")


# Beyond this many resamples no interval's fourth digit moves, and the resample sums (8 bytes each
# per metric) would fill memory only after the run has generated.
MAX_RESAMPLES = 1_000_000


def resamples(value: str) -> int:
    return _number(value, int, lambda n: 0 <= n <= MAX_RESAMPLES, f"0 to {MAX_RESAMPLES:,}")


# Beams multiply the batch's memory; big_vision's captioning configs use 2 or 3.
MAX_BEAMS = 64


def beams(value: str) -> int:
    return _number(value, int, lambda n: 1 <= n <= MAX_BEAMS, f"1 to {MAX_BEAMS}")


def device(value: str) -> str:
    """auto, cpu, cuda or cuda:N. Whether that CUDA device exists is judged when the model
    loads (`models.resolve_device`); a misspelling is refused before a `reproduce` starts its
    first checkpoint's run."""
    kind, colon, index = value.partition(":")
    if value in ("auto", "cpu", "cuda") or (kind == "cuda" and colon and index.isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"use auto, cpu, cuda or cuda:N, got {value!r}")


def http_url(value: str) -> str:
    """A server's address. Anything else would be retried as if the network had failed; the
    value is not echoed (a URL can carry a key)."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError("must be an http(s) URL such as http://127.0.0.1:8080")
    return value


# A request waits at most a day and the rate is at least one per 1000 s: beyond either, the
# wait overflows the clock's timestamps instead of meaning anything.
MAX_SECONDS, MIN_RATE = 86_400.0, 0.001


def seconds(value: str) -> float:
    return _number(value, float, lambda x: 0 < x <= MAX_SECONDS,
                   f"above 0 and at most {MAX_SECONDS:,.0f} (a day)")


def rate(value: str) -> float:
    return _number(value, float, lambda x: x >= MIN_RATE, f"at least {MIN_RATE} per second")


def port(value: str) -> int:
    return _number(value, int, lambda n: 0 <= n <= 65535, "0 to 65535 (0: any free port)")


def positive_float(value: str) -> float:
    return _number(value, float, lambda x: x > 0, "positive")


def fraction(value: str) -> float:
    """A share, 0 to 1 (a coverage, an error rate)."""
    return _number(value, float, lambda x: 0 <= x <= 1, "between 0 and 1")


def score_threshold(value: str) -> float:
    """A flag threshold on scores in [0, 1]: above 0 (0 flags every text), at most 1."""
    return _number(value, float, lambda x: 0 < x <= 1,
                   "above 0 and at most 1 (scores are probabilities)")


def add_bootstrap_args(parser: argparse.ArgumentParser, what: str = "intervals") -> None:
    """--bootstrap R and --seed S, as every verb that draws intervals takes them."""
    parser.add_argument("--bootstrap", type=resamples, default=DEFAULT_RESAMPLES,
                        help=f"resamples for {what} (0: none; default: %(default)s)")
    parser.add_argument("--seed", type=seed, default=DEFAULT_SEED,
                        help="bootstrap seed (default: %(default)s)")
