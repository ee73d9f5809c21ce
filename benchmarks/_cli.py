"""argparse value types shared by the benchmark commands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

_V = TypeVar("_V")


class UsageError(ValueError):
    """Options that do not go together, or values the scenarios cannot take (the message
    says which); the command prints it and exits with status 2."""


def _integer(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def int_between(minimum: int, maximum: int, why: str) -> Callable[[str], int]:
    """An argparse type: an integer in ``minimum..maximum``; ``why`` says where the
    maximum comes from (the server's own bound), so the message explains the refusal."""

    def value_type(text: str) -> int:
        value = _integer(text, minimum=minimum)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum} ({why}), got {value}")
        return value

    return value_type


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _integer(text, minimum=1)


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be {'>' if positive else '>='} 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, positive=True)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, positive=False)


def latency_jitter(text: str) -> float:
    """A share of a wait: a number >= 0 and below 1."""
    value = _number(text, positive=False)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1 (a share of the wait), got {text}")
    return value


def once_each(values: Sequence[_V]) -> tuple[_V, ...]:
    """``values`` without repeats, in order: a value given twice would run twice, and
    the results would keep only the last run's figures."""
    return tuple(dict.fromkeys(values))
