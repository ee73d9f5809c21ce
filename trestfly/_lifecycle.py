"""What a session checks as it opens: which task is opening it, and whether a setting
read at construction was assigned since (pure but for the current task)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

__all__ = ["SETTINGS_READ_AT_CONSTRUCTION", "Opening", "changed_settings", "read_settings"]

#: Settings the constructor reads into the call defaults, the error map, the throttle,
#: the limiter and the User-Agent: assigned later, they changed nothing.
SETTINGS_READ_AT_CONSTRUCTION = (
    "_box",
    "_box_attrs",
    "_conv_json",
    "_error_map",
    "_base_error_map",
    "_retry_statuses",
    "_retry_on",
    "_restricted_paths",
    "_max_concurrency",
    "_rate_limit",
    "_burst",
    "_adaptive",
    "_throttle",
    "_retry_budget",
    "_vendor",
    "_product",
    "_build",
    "_lib_name",
    "_lib_version",
    "_error_on_unexpected_input",
)


def _same(value: object, read: object) -> bool:
    """Whether a setting still holds what was read (an equal value: assigning the
    value it had changes nothing; ``read`` is a copy of a value that can change in
    place, so identity says nothing there)."""
    if value is read:
        return True
    if isinstance(read, Mapping) and isinstance(value, Mapping):
        # A MappingProxyType and the dict it was read into compare unequal.
        read, value = dict(read), dict(value)
    elif isinstance(read, frozenset) and isinstance(value, list | tuple | set):
        # _retry_on is kept as a frozenset: the same statuses given again as a tuple
        # (self._retry_on = tuple(self._retry_on)) change nothing.
        try:
            return frozenset(value) == read
        except TypeError:  # an unhashable item: not the same
            return False
    try:
        return bool(value == read)
    except Exception:  # an __eq__ that fails: not the same
        return False


class Opening:
    """The task entering a session, and the nurseries it had open before: a task
    started in one of those (a worker beside the ``async with``) is not part of the
    opening, one started in a nursery opened since (by ``_authenticate``) is."""

    __slots__ = ("nurseries_before", "task")

    def __init__(self) -> None:
        self.task = trio.lowlevel.current_task()
        self.nurseries_before = tuple(self.task.child_nurseries)

    def includes(self, task: trio.lowlevel.Task) -> bool:
        current: trio.lowlevel.Task | None = task
        while current is not None:
            if current is self.task:
                return True
            nursery = current.parent_nursery
            if nursery is None:
                return False
            if nursery.parent_task is self.task:
                return not any(nursery is before for before in self.nurseries_before)
            current = nursery.parent_task
        return False


def _snapshot(value: object) -> object:
    """``value``, or a copy of it when it can change in place: an SDK's
    ``self._error_map[418] = Teapot`` after ``super().__init__()`` left the object the
    session had read equal to itself, and the change was ignored silently."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | set | bytearray):
        return value.copy()
    return value


def read_settings(session: object) -> dict[str, Any]:
    """The settings of SETTINGS_READ_AT_CONSTRUCTION as ``session`` holds them now (a
    copy of those that can change in place)."""
    return {name: _snapshot(getattr(session, name)) for name in SETTINGS_READ_AT_CONSTRUCTION}


def changed_settings(session: object, read: Mapping[str, Any]) -> list[str]:
    """The settings ``session`` holds otherwise than ``read`` (see read_settings)."""
    return [name for name, value in read.items() if not _same(getattr(session, name), value)]
