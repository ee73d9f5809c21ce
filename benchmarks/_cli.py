"""argparse value types shared by the benchmark commands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

_V = TypeVar("_V")


class UsageError(ValueError):
    """Options that do not go together, or values the scenarios cannot take (the message
    says which); the command prints it and exits with status 2."""


#: The largest count (requests, tasks, slots, rounds) and number (a rate, seconds) an
#: option takes: without a bound, a 400-digit count or 1e308 passed and then crashed
#: with an OverflowError (converted to a float, or ceil(inf)), some after the run began.
MAX_COUNT = 10**9
MAX_NUMBER = 1e9
#: The longest --time-limit, in seconds (11 days and a half).
MAX_SECONDS = 1e6


def _shown(text: str) -> str:
    """``text`` as a message quotes it: a 400-digit value is not printed back whole."""
    text = text.strip()
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} characters)"


def _integer(text: str, *, minimum: int, maximum: int = MAX_COUNT) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {_shown(text)!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {_shown(text)}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {_shown(text)}")
    return value


def int_between(minimum: int, maximum: int, why: str) -> Callable[[str], int]:
    """An argparse type: an integer in ``minimum..maximum``; ``why`` says where the
    maximum comes from (the server's own bound), so the message explains the refusal."""

    def value_type(text: str) -> int:
        value = _integer(text, minimum=minimum, maximum=max(maximum, MAX_COUNT))
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} ({why}), got {value}")
        return value

    return value_type


def positive_int(text: str) -> int:
    """An integer in ``1..MAX_COUNT``."""
    return _integer(text, minimum=1)


def _number(text: str, *, positive: bool, maximum: float = MAX_NUMBER) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {_shown(text)!r}") from None
    if math.isnan(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(
            f"must be {'>' if positive else '>='} 0, got {_shown(text)}"
        )
    if value > maximum:  # inf too
        raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {_shown(text)}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 and at most ``MAX_NUMBER``."""
    return _number(text, positive=True)


#: The lowest rate limit a scenario takes (requests per second): a bucket's time to
#: its next token, ``1 / rate``, must be a number (at 1e-310/s it was infinite, and the
#: server failed on every refusal before counting it).
MIN_RATE = 1e-3


def rate_limit(text: str) -> float:
    """A rate in requests per second: at least ``MIN_RATE``, at most ``MAX_NUMBER``."""
    value = _number(text, positive=True)
    if value < MIN_RATE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_RATE:g}/s, got {_shown(text)}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 and at most ``MAX_NUMBER``."""
    return _number(text, positive=False)


def time_limit_seconds(text: str) -> float:
    """Seconds: a number > 0 and at most ``MAX_SECONDS``."""
    return _number(text, positive=True, maximum=MAX_SECONDS)


def latency_jitter(text: str) -> float:
    """A share of a wait: a number >= 0 and below 1."""
    value = _number(text, positive=False)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1 (a share of the wait), got {text}")
    return value


def probability(text: str) -> float:
    """A share of requests: a number from 0 to 1."""
    value = _number(text, positive=False)
    if value > 1:
        raise argparse.ArgumentTypeError(
            f"must be at most 1 (a share of requests), got {_shown(text)}"
        )
    return value


def once_each(values: Sequence[_V]) -> tuple[_V, ...]:
    """``values`` without repeats, in order: a value given twice would run twice, and
    the results would keep only the last run's figures."""
    return tuple(dict.fromkeys(values))


def out_dir(text: str) -> Path:
    """``--out``'s directory: any path but an empty one, which ``Path("")`` reads as the
    current directory (``--out ""`` wrote results.json into it, unasked)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "expected a directory, got an empty path (write '.' for the current one)"
        )
    return Path(text)
