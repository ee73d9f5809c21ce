"""CPU pinning: the server on one core, the client on another.

On a small machine the client and the server otherwise fight for the same core and the
scheduler's choices become part of the measurement.  Pinning is best effort: where the
OS has no affinity API (macOS, Windows) or fewer than two cores are allowed, the
benchmarks run unpinned and say so in their results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuPlan:
    """Which core the server and which the client run on."""

    server: int
    client: int


def cpu_plan() -> CpuPlan | None:
    """The first two cores this process may use, or None when pinning is not possible."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        # The allowed set, not os.cpu_count(): a container's cpuset may be e.g. {2, 3}.
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:
        return None
    if len(allowed) < 2:
        return None
    return CpuPlan(server=allowed[0], client=allowed[1])


def pin_to(cpu: int) -> bool:
    """Pin the calling process to ``cpu``; False (and unpinned) when the OS refuses."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return False
    return True


@contextmanager
def pinned(cpu: int | None) -> Iterator[bool]:
    """Pin this process to ``cpu`` (None: leave it alone) and restore the old set after.

    Yields whether the process is pinned.
    """
    if cpu is None or not hasattr(os, "sched_getaffinity"):
        yield False
        return
    try:
        previous = os.sched_getaffinity(0)
    except OSError:
        yield False
        return
    is_pinned = pin_to(cpu)
    try:
        yield is_pinned
    finally:
        if is_pinned:
            # Restored so that a caller of main() in-process (a test, a notebook) is
            # not left confined to one core.
            os.sched_setaffinity(0, previous)
