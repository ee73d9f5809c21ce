"""Bounded fan-out: run ``await fn(item)`` for many items with at most ``limit`` at once.

Both forms run a fixed pool of ``limit`` worker tasks in a nursery, pulling items lazily
from the iterable, so a million items never means a million tasks.  The first failure
cancels every other worker and is raised as itself, not wrapped in an ExceptionGroup:
a fan-out either returns every result or raises.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sized
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from types import TracebackType
from typing import Any, Generic, NoReturn, TypeVar

import trio

from .errors import TrestflyError, UnexpectedValueError

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")  # what an EnteredOnce block gives

_PENDING: Any = object()
#: What next() returns from map's source once it is exhausted.
_DONE: Any = object()


def _check_limit(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnexpectedValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_fn(fn: object) -> None:
    """Refuse a ``fn`` that is not callable before any worker starts (each failed with
    a bare TypeError, "'NoneType' object is not callable")."""
    if not callable(fn):
        raise UnexpectedValueError(
            f"fn must be an async function (a callable), got a {type(fn).__name__}"
        )


def _awaited(result: Awaitable[R]) -> Awaitable[R]:
    """``result`` of a call of fn, or UnexpectedValueError when it is no awaitable.

    A sync ``fn`` cannot be told from an async one before it is called (a lambda or a
    partial returning a coroutine is fine), so it is caught on its first result: that
    call ran, and its result is lost.  Raised in the worker, the error is a failure of
    fn like any other: it cancels the pool and comes out as itself, where ``await``
    raised a bare TypeError ("object int can't be used in 'await' expression").
    """
    if not inspect.isawaitable(result):
        raise UnexpectedValueError(
            f"fn must be an async function; it returned a {type(result).__name__}"
        )
    return result


def _iterate(items: Iterable[T]) -> Iterator[T]:
    """``iter(items)``, or UnexpectedValueError naming what ``items`` is (iter() of an
    async generator raised a bare TypeError)."""
    try:
        return iter(items)  # the sequence protocol (only __getitem__) included
    except TypeError:
        hint = (
            " (an async iterable: collect it first, [item async for item in it])"
            if hasattr(items, "__aiter__")
            else ""
        )
    raise UnexpectedValueError(f"items must be an iterable, got a {type(items).__name__}{hint}")


def _pool_size(limit: int, items: Iterable[Any]) -> int:
    """Most workers for ``items``: ``limit``, but no more than there are items (when
    known).  Each worker starts the next when it takes an item, so an iterable of
    unknown length starts one more than it has (up to ``limit``): started all at once,
    ``limit=20000`` over a generator of three items started 20,000 tasks (1.3 s, 39 MB,
    a deadline waited for all of them)."""
    if not isinstance(items, Sized):
        return limit
    try:
        return max(1, min(limit, len(items)))
    except OverflowError:  # range(2**64): more than len() can say, and lazy
        return limit


def _without_cancelled(error: BaseException) -> BaseException | None:
    """``error`` without the Cancelled it holds: None when it is nothing else, itself
    (untouched, a group included) when it holds none."""
    if isinstance(error, trio.Cancelled):
        return None
    if isinstance(error, BaseExceptionGroup):
        cancelled, rest = error.split(trio.Cancelled)
        return error if cancelled is None else rest
    return error


def _only_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one non-Cancelled exception a nursery's group holds, if it holds exactly one.

    Only the nursery's own level is unwrapped: an exception that is itself a group (the
    caller's own ExceptionGroup, say) is returned whole, not replaced by its leaves.
    """
    errors = [error for error in map(_without_cancelled, group.exceptions) if error is not None]
    return errors[0] if len(errors) == 1 else None


def raise_single_error(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the one non-Cancelled exception of a nursery's ``group`` as itself, with
    its own ``__context__``; return when there is not exactly one.

    Raised from the ``except`` block that caught the group, Python would make the group
    its context: the traceback would show the nursery's group, not what the exception
    was raised while handling.
    """
    single = _only_error(group)
    if single is None:
        return
    _raise_with_context(single, single.__context__)


def _raise_with_context(error: BaseException, context: BaseException | None) -> NoReturn:
    """Raise ``error`` with ``context`` as its ``__context__`` (and its own suppression),
    not the exception being handled where it is raised, which Python would set."""
    suppress = error.__suppress_context__
    try:
        raise error
    finally:
        error.__context__, error.__suppress_context__ = context, suppress


class _FirstFailure:
    """Keeps the first exception of a worker pool and cancels the pool on it."""

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.error: BaseException | None = None
        # What the pool's nursery raised beside the failure and was not re-raised (the
        # consumer's own exception): shown as the failure's context (see raise_if_failed).
        self.swallowed: BaseException | None = None

    def record(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        assert self.scope is not None
        self.scope.cancel()

    def settle(self, group: BaseExceptionGroup[BaseException]) -> None:
        """In the handler of the pool's nursery ``group``: return when the recorded
        failure is what the pool raises (call :meth:`raise_if_failed` after the
        handler), raise otherwise.

        Besides Cancelled, the group may hold the consumer's own exception, which the
        failure that cancelled it outranks (and keeps as its context), or a
        KeyboardInterrupt or SystemExit, which outranks the failure.
        """
        if self.error is not None:
            _, rest = group.split(trio.Cancelled)
            fatal = rest.subgroup(lambda error: not isinstance(error, Exception)) if rest else None
            if fatal is None:
                self.swallowed = rest
                return
            self.error = None  # outranked: the KeyboardInterrupt or SystemExit goes on
        # An exception from the consumer's own block comes back wrapped: unwrap it.
        raise_single_error(group)
        raise group

    def raise_if_failed(self) -> None:
        """Raise the first failure, if any, with its own ``__context__`` (or, when it has
        none, what was swallowed beside it): raised while the pool's Cancelled is handled,
        Python would make that its context, and the traceback would begin with trestfly's
        machinery."""
        if self.error is None:
            return
        error, self.error = self.error, None
        _raise_with_context(error, error.__context__ or self.swallowed)


async def map_ordered(
    fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, limit: int
) -> list[R]:
    """``[await fn(item) for item in items]``, ``limit`` at a time, results in item order."""
    _check_limit("limit", limit)
    _check_fn(fn)
    results: list[Any] = []
    source = _iterate(items)
    failure = _FirstFailure()
    workers = _pool_size(limit, items)
    try:
        async with trio.open_nursery() as nursery:
            failure.scope = nursery.cancel_scope

            async def worker() -> None:
                nonlocal workers
                # Caught here, like a failure of fn: an exception of the items iterable
                # itself must be raised as itself too, not wrapped in the nursery's
                # ExceptionGroup.
                try:
                    while True:
                        # A call that never checkpoints (a cached answer, a check that
                        # raises) let the pool's cancellation pass it by: after the first
                        # failure every remaining item went through fn, and an endless
                        # iterable never ended, even for a cancelled caller.  A schedule
                        # point, not only a cancel point: Trio turns a deadline passed
                        # into a cancellation only when the scheduler runs, so inside
                        # move_on_after such a map never stopped (2.7 million calls in 3 s).
                        # Before next(), never between it and the append: another worker
                        # would take the next item and its place in the results.
                        await trio.lowlevel.checkpoint()
                        item = next(source, _DONE)
                        if item is _DONE:
                            break
                        index = len(results)
                        results.append(_PENDING)
                        if workers > 1:  # the next worker, for the next item
                            workers -= 1
                            nursery.start_soon(worker)
                        results[index] = await _awaited(fn(item))
                except Exception as error:
                    failure.record(error)

            nursery.start_soon(worker)
    except BaseExceptionGroup as group:
        # A KeyboardInterrupt or SystemExit of a call (not caught above) comes out as
        # itself, as from map_as_completed, not in the nursery's group.
        failure.settle(group)
    failure.raise_if_failed()
    return results


class EnteredOnce(AbstractAsyncContextManager[C], Generic[C]):
    """An ``async with`` block that may be entered once: the context manager behind it
    (an ``@asynccontextmanager``, whose nursery is sound whatever is raised) is made by
    ``opener`` on entry.  Entered a second time, a spent generator context manager
    raised a bare AttributeError ("no attribute 'args'"); this raises TrestflyError,
    naming ``what`` and then ``again`` (what to do instead)."""

    def __init__(
        self, what: str, opener: Callable[[], AbstractAsyncContextManager[C]], again: str = ""
    ) -> None:
        self._what, self._opener, self._again = what, opener, again
        self._entered: AbstractAsyncContextManager[C] | None = None

    async def __aenter__(self) -> C:
        if self._entered is not None:
            raise TrestflyError(f"a {self._what}(...) block can be entered only once{self._again}")
        self._entered = self._opener()
        return await self._entered.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._entered is not None
        return await self._entered.__aexit__(exc_type, exc, traceback)


class CompletedMap(EnteredOnce["trio.MemoryReceiveChannel[tuple[T, R]]"]):
    """``async with CompletedMap(...) as results``: a channel of ``(item, result)``
    pairs in completion order.

    At most ``limit`` calls run at once and at most ``buffer`` finished results wait in
    the channel, plus one per worker that finished and waits for room (``limit +
    buffer`` in all): a slow consumer stops the workers (backpressure), so memory stays
    bounded whatever the number of items.  Leaving the block (normally, by ``break`` or by
    an exception) cancels the workers; a worker's failure cancels the block and is raised
    as itself.

    The pool itself is an ``@asynccontextmanager`` generator (:func:`_worker_pool`), whose
    ``async with`` keeps the nursery sound whatever is raised, but the failure is raised
    here, outside it: Python turns a StopIteration or StopAsyncIteration raised inside a
    generator into a RuntimeError, and a call's ``await anext(pages)`` on a spent
    iterator raises the latter.
    """

    def __init__(
        self, fn: Callable[[T], Awaitable[R]], items: Iterable[T], *, limit: int, buffer: int
    ) -> None:
        self._failure = _FirstFailure()
        pool = partial(_worker_pool, fn, items, limit=limit, buffer=buffer, failure=self._failure)
        super().__init__("map_as_completed", pool)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        suppressed = await super().__aexit__(exc_type, exc, traceback)
        self._failure.raise_if_failed()
        return suppressed


@asynccontextmanager
async def _worker_pool(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T],
    *,
    limit: int,
    buffer: int,
    failure: _FirstFailure,
) -> AsyncIterator[trio.MemoryReceiveChannel[tuple[T, R]]]:
    """The workers of a :class:`CompletedMap`, in a nursery; a failure is recorded in
    ``failure``, never raised from here (see CompletedMap)."""
    _check_limit("limit", limit)
    _check_fn(fn)
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
        raise UnexpectedValueError(f"buffer must be an integer >= 0, got {buffer!r}")
    send, receive = trio.open_memory_channel[tuple[T, R]](buffer)
    source = _iterate(items)
    try:
        async with trio.open_nursery() as nursery:
            failure.scope = nursery.cancel_scope
            to_start = _pool_size(limit, items) - 1  # workers started as items are taken
            workers_left = 1

            async def worker() -> None:
                nonlocal workers_left, to_start
                # Whether this worker ended as a worker may: the items ran out, a call
                # failed (recorded: it cancels the pool), or the consumer left.  Not on
                # a KeyboardInterrupt, SystemExit or Cancelled, which the nursery turns
                # into the consumer's cancellation: closing the channel first ended the
                # consumer's loop as if every item were done.
                ended = False
                try:
                    try:
                        while True:
                            # As in map(): a call that never checkpoints would run for one
                            # more item per worker after a failure or a cancellation.
                            # Before next(): a worker of a cancelled pool takes no item
                            # (and starts no other), or a chain of them emptied `limit`
                            # items of the caller's iterable past a deadline.
                            await trio.lowlevel.checkpoint_if_cancelled()
                            item = next(source, _DONE)
                            if item is _DONE:
                                break
                            if to_start:  # the next worker, for the next item
                                to_start -= 1
                                workers_left += 1
                                nursery.start_soon(worker)
                            result = await _awaited(fn(item))
                            try:
                                await send.send((item, result))
                            except trio.BrokenResourceError:
                                break  # the consumer closed its end: nobody wants more
                    except Exception as error:
                        # A call's failure, or the items' own (as in map()): recorded,
                        # it cancels the pool, the consumer's loop with it.
                        failure.record(error)
                    ended = True
                finally:
                    workers_left -= 1
                    if workers_left == 0 and ended:
                        send.close()  # the consumer's loop ends when every worker is done

            nursery.start_soon(worker)
            try:
                yield receive
            finally:
                # The consumer is done (or failed): no worker outlives the block.  Cancel
                # before closing the channel, so workers stop instead of failing to send.
                nursery.cancel_scope.cancel()
                receive.close()
    except BaseExceptionGroup as group:
        failure.settle(group)
