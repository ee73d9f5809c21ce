"""map and map_as_completed: bounded, ordered or streaming, failures raised as themselves."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import trio
import trio.lowlevel

from trestfly import TrioAPISession, errors


def api() -> TrioAPISession:
    return TrioAPISession(
        url="http://h.test", transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )


async def test_map_keeps_item_order_and_bounds_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    running = peak = 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep((7 - n % 7) * 0.01)  # later items finish first
        running -= 1
        return n * n

    async with api() as session:
        result = await session.map(work, range(50), limit=5)
    assert result == [n * n for n in range(50)]
    assert peak == 5


async def test_map_raises_the_first_failure_itself_and_cancels_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[int] = []

    async def work(n: int) -> int:
        if n == 3:
            await trio.sleep(0.5)
            raise KeyError(n)
        await trio.sleep(10)
        finished.append(n)
        return n

    async with api() as session:
        with pytest.raises(KeyError):
            await session.map(work, range(20), limit=10)
    assert finished == []


async def test_map_calls_nothing_more_after_a_failure_of_a_call_that_never_waits() -> None:
    # Without a checkpoint between items the pool's cancellation passed the workers
    # by: every remaining item went through fn (its side effects too), and over an
    # endless iterable the map never ended.
    calls: list[int] = []

    async def cached(n: int) -> int:
        calls.append(n)
        if n == 0:
            raise KeyError(n)
        return n  # answered from a cache: no checkpoint

    async with api() as session:
        with trio.fail_after(5), pytest.raises(KeyError):
            await session.map(cached, itertools.count(), limit=2)
    assert calls == [0]


async def test_a_cancelled_map_of_calls_that_never_wait_ends() -> None:
    calls = 0

    async def cached(n: int) -> int:
        nonlocal calls
        calls += 1
        return n

    async with api() as session:
        with trio.move_on_after(5) as scope:
            scope.cancel()
            await session.map(cached, itertools.count(), limit=2)
    assert scope.cancelled_caught and calls == 0


async def test_a_deadline_ends_a_map_of_calls_that_never_wait(
    mock_clock: trio.testing.MockClock,
) -> None:
    # checkpoint_if_cancelled is a cancel point, not a schedule point, and Trio delivers
    # a deadline passed only when the scheduler runs: inside move_on_after such a map
    # never stopped.  Each call moves the (mock) clock on by 10 ms, so the deadline of
    # one second has passed after 100 of them; the 20,000 items bound the test.
    calls = 0

    async def cached(n: int) -> int:
        nonlocal calls
        calls += 1
        mock_clock.jump(0.01)
        return n

    async with api() as session:
        with trio.move_on_after(1) as scope:
            await session.map(cached, range(20_000), limit=2)

        fetched = 0

        async def fetch(n: int) -> None:
            # api.get through an in-process transport never waits either.
            nonlocal fetched
            mock_clock.jump(0.01)
            await session.get(f"x/{n}")
            fetched += 1

        with trio.move_on_after(1) as calls_scope:
            await session.map(fetch, range(2_000), limit=2)
    assert scope.cancelled_caught and 100 <= calls < 110
    assert calls_scope.cancelled_caught and fetched < 110


async def test_map_as_completed_calls_nothing_more_after_a_failure_or_a_cancellation() -> None:
    # Each worker went on to call fn once more before its send checkpointed: up to
    # `limit` calls (API writes, say) after the fan-out had failed or been cancelled.
    calls: list[int] = []

    async def cached(n: int) -> int:
        calls.append(n)
        if n == 0:
            raise KeyError(n)
        return n

    async with api() as session:
        with trio.fail_after(5), pytest.raises(KeyError):
            async with session.map_as_completed(cached, itertools.count(), limit=4) as results:
                async for _ in results:
                    pass
        assert calls == [0]
        calls.clear()
        with trio.move_on_after(5) as scope:
            scope.cancel()
            async with session.map_as_completed(cached, itertools.count(1), limit=4) as results:
                async for _ in results:
                    pass
    assert scope.cancelled_caught and calls == []


def rows() -> Iterator[int]:
    """Items whose iteration fails after two."""
    yield 1
    yield 2
    raise ValueError("bad input row")


async def work(n: int) -> int:
    await trio.lowlevel.checkpoint()
    return n


async def test_map_raises_a_failure_of_the_items_themselves_as_itself() -> None:
    async with api() as session:
        with pytest.raises(ValueError, match="bad input row"):  # not an ExceptionGroup
            await session.map(work, rows(), limit=2)


async def test_map_of_nothing_is_empty() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        assert await session.map(work, []) == []


async def test_map_of_requests_through_the_session() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    async with TrioAPISession(
        url="http://h.test",
        transport=httpx.MockTransport(handler),
        conv_json=True,
        max_concurrency=4,
    ) as session:

        async def fetch(n: int) -> str:
            return str((await session.get(f"items/{n}"))["path"])

        paths = await session.map(fetch, range(30))
    assert paths == [f"/items/{n}" for n in range(30)]
    assert session.stats.successes == 30


async def test_map_as_completed_streams_with_backpressure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started = 0

    async def work(n: int) -> int:
        nonlocal started
        started += 1
        await trio.sleep(0.01)
        return n

    session = api()
    async with (
        session,
        session.map_as_completed(work, itertools.count(), limit=4, buffer=2) as results,
    ):
        seen = []
        async for item, value in results:
            assert item == value
            seen.append(value)
            await trio.sleep(1)  # a slow consumer
            if len(seen) == 5:
                break
    # Never more started than consumed + buffer + running workers: memory stays bounded.
    assert started <= 5 + 2 + 4


async def test_map_as_completed_yields_every_result_once() -> None:
    async def work(n: int) -> int:
        await trio.lowlevel.checkpoint()
        return -n

    async with api() as session, session.map_as_completed(work, range(1000), limit=16) as results:
        values = sorted([value async for _, value in results])
    assert values == sorted(-n for n in range(1000))


async def test_map_as_completed_failure_is_raised_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def work(n: int) -> int:
        await trio.sleep(0.01 * n)
        if n == 5:
            raise errors.NotFoundError(
                httpx.Response(404, request=httpx.Request("GET", "http://x"))
            )
        return n

    async with api() as session:
        with pytest.raises(errors.NotFoundError) as caught:
            async with session.map_as_completed(work, range(100), limit=8) as results:
                async for _ in results:
                    pass
    # Raised with its own context, not the Cancelled that stopped the consumer's loop.
    assert caught.value.__context__ is None


async def test_a_stop_iteration_raised_by_a_call_is_raised_as_itself() -> None:
    # ``await anext(pages)`` on a spent async iterator raises StopAsyncIteration: from a
    # generator-based context manager Python would turn it into a RuntimeError.
    async def work(n: int) -> int:
        if n == 3:
            raise StopAsyncIteration("no more pages")
        return n

    async with api() as session:
        with pytest.raises(StopAsyncIteration, match="no more pages"):
            async with session.map_as_completed(work, range(10), limit=2) as results:
                async for _ in results:
                    pass
        with pytest.raises(StopAsyncIteration, match="no more pages"):
            await session.map(work, range(10), limit=2)


async def test_a_map_as_completed_block_is_entered_once() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        stream = session.map_as_completed(work, range(3))
        async with stream as results:
            assert sorted([item async for item, _ in results]) == [0, 1, 2]
        with pytest.raises(errors.TrestflyError, match="entered only once"):
            async with stream:
                pass


async def _fail_while_the_consumer_is_busy(consumer_raises: BaseException) -> None:
    # The consumer holds its first result (shielded) while worker 0 fails, then raises.
    async def work(n: int) -> int:
        if n == 0:
            await trio.sleep(0.05)
            raise ValueError("worker failed")
        return n

    async with api() as session, session.map_as_completed(work, [0, 1], limit=2) as results:
        async for _ in results:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.1)
            raise consumer_raises


async def test_a_failure_that_cancelled_the_consumer_keeps_its_exception_as_context(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ValueError, match="worker failed") as caught:
        await _fail_while_the_consumer_is_busy(RuntimeError("the consumer's own"))
    context = caught.value.__context__
    assert isinstance(context, BaseExceptionGroup)
    assert [str(error) for error in context.exceptions] == ["the consumer's own"]


async def test_a_keyboard_interrupt_outranks_a_calls_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(KeyboardInterrupt):
        await _fail_while_the_consumer_is_busy(KeyboardInterrupt())


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), SystemExit(3)])
async def test_a_calls_interrupt_comes_out_of_map_as_itself(interrupt: BaseException) -> None:
    # map raised it wrapped in the nursery's BaseExceptionGroup (map_as_completed did not):
    # `except KeyboardInterrupt` missed it, and sys.exit(3) in a call exited with 1.
    async def work(n: int) -> int:
        if n == 3:
            raise interrupt
        await trio.lowlevel.checkpoint()
        return n

    async with api() as session:
        with pytest.raises(type(interrupt)) as caught:
            await session.map(work, range(10), limit=4)
        assert caught.value is interrupt
        with pytest.raises(type(interrupt)) as caught:
            async with session.map_as_completed(work, range(10), limit=4) as results:
                async for _ in results:
                    pass
        assert caught.value is interrupt


async def test_items_that_are_an_async_iterable_are_named() -> None:
    # iter() of an async generator raised a bare TypeError.
    async def pages() -> AsyncIterator[int]:
        yield 1

    async def work(n: int) -> int:
        return n

    async with api() as session:
        with pytest.raises(errors.UnexpectedValueError, match="an async iterable: collect"):
            await session.map(work, pages())  # type: ignore[arg-type]
        with pytest.raises(errors.UnexpectedValueError, match="an async iterable: collect"):
            async with session.map_as_completed(work, pages()):  # type: ignore[arg-type]
                pass
        with pytest.raises(errors.UnexpectedValueError, match="items must be an iterable"):
            await session.map(work, 5)  # type: ignore[arg-type]

        class Legacy:  # the sequence protocol, which iter() takes
            def __getitem__(self, index: int) -> int:
                if index >= 3:
                    raise IndexError(index)
                return index

        assert await session.map(work, Legacy()) == [0, 1, 2]  # type: ignore[arg-type]


async def test_an_interrupt_after_the_pool_opened_leaves_trio_sound() -> None:
    class Items:
        def __len__(self) -> int:  # read once the pool's nursery is open
            raise KeyboardInterrupt

        def __iter__(self) -> Iterator[int]:
            return iter(range(3))

    async def work(n: int) -> int:
        return n

    async with api() as session:
        with pytest.raises(KeyboardInterrupt):
            async with session.map_as_completed(work, Items(), limit=2):
                pass
        assert await session.map(work, range(3)) == [0, 1, 2]  # the run goes on


async def test_consumer_exception_propagates_unwrapped() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        with pytest.raises(ZeroDivisionError):
            async with session.map_as_completed(work, range(10), limit=2) as results:
                async for _ in results:
                    raise ZeroDivisionError


async def test_a_consumer_exception_keeps_what_it_was_raised_while_handling() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        with pytest.raises(ZeroDivisionError) as caught:
            async with session.map_as_completed(work, range(10), limit=2) as results:
                async for _ in results:
                    try:
                        raise KeyError("missing")
                    except KeyError:
                        raise ZeroDivisionError from None
    # Its own context and suppression, as plain Python would have it: not the nursery's.
    assert isinstance(caught.value.__context__, KeyError)
    assert caught.value.__suppress_context__


class Spawns(trio.abc.Instrument):
    """Counts the tasks started while it is installed (see counting_spawns)."""

    def __init__(self) -> None:
        self.count = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.count += 1


@contextmanager
def counting_spawns() -> Iterator[Spawns]:
    spawns = Spawns()
    trio.lowlevel.add_instrument(spawns)
    try:
        yield spawns
    finally:
        trio.lowlevel.remove_instrument(spawns)


async def test_a_fan_out_of_a_few_items_starts_a_few_workers() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        with counting_spawns() as spawned:
            assert await session.map(work, [1, 2], limit=10_000) == [1, 2]
            async with session.map_as_completed(work, [1, 2], limit=10_000) as results:
                assert sorted([result async for _, result in results]) == [1, 2]
            async with session.map_as_completed(work, [], limit=10_000) as results:
                assert [pair async for pair in results] == []
    assert spawned.count <= 6  # two workers (one for none) per fan-out, not ten thousand


async def test_a_fan_out_of_an_unsized_iterable_starts_workers_as_items_come() -> None:
    # A generator has no len(): the pool started `limit` workers at once (20,000 for
    # three items: 1.3 s, 39 MB, and a deadline around it waited for all of them).
    async def work(n: int) -> int:
        await trio.lowlevel.checkpoint()
        return n

    async with api() as session:
        with counting_spawns() as spawned:
            three = (n for n in range(3))
            assert await session.map(work, three, limit=20_000) == [0, 1, 2]
            async with session.map_as_completed(work, iter([0, 1, 2]), limit=20_000) as pairs:
                assert sorted([result async for _, result in pairs]) == [0, 1, 2]
    assert spawned.count <= 2 * 4  # one worker per item and one that finds none, per fan-out


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_failed_fan_out_takes_no_more_items(streamed: bool) -> None:
    # Each new worker took an item before its cancel check and started the next: after
    # the first call failed, a chain of them emptied `limit` items of the generator.
    pulled = 0

    def endless() -> Iterator[int]:
        nonlocal pulled
        for n in itertools.count():
            pulled += 1
            yield n

    async def fail(n: int) -> int:
        raise ValueError(n)

    async with api() as session:
        with pytest.raises(ValueError, match=r"^0$"):
            if streamed:
                async with session.map_as_completed(fail, endless(), limit=1000) as pairs:
                    async for _ in pairs:
                        pass
            else:
                await session.map(fail, endless(), limit=1000)
    assert pulled <= 2


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_fan_out_of_a_generator_still_runs_limit_calls_at_once(
    autojump_clock: trio.testing.MockClock, streamed: bool
) -> None:
    running = peak = 0

    async def work(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.01 * (1 + n % 3))
        running -= 1
        return n

    items = (n for n in range(200))
    async with api() as session:
        if streamed:
            async with session.map_as_completed(work, items, limit=25) as pairs:
                assert sorted([result async for _, result in pairs]) == list(range(200))
        else:
            assert await session.map(work, items, limit=25) == list(range(200))
    assert peak == 25


async def test_a_group_raised_by_the_consumer_comes_out_whole() -> None:
    async def work(n: int) -> int:
        return n

    leaf = KeyError("k")
    async with api() as session:
        with pytest.raises(ExceptionGroup) as caught:
            async with session.map_as_completed(work, range(10), limit=2) as results:
                async for _ in results:
                    raise ExceptionGroup("my batch failed", [leaf])
    # Only the nursery's wrapper is removed: the caller's own group is not flattened.
    assert caught.value.message == "my batch failed"
    assert caught.value.exceptions == (leaf,)


async def test_bad_limits_are_typed_errors() -> None:
    async def work(n: int) -> int:
        return n

    async with api() as session:
        with pytest.raises(errors.UnexpectedValueError, match="limit"):
            await session.map(work, [1], limit=-1)
        with pytest.raises(errors.UnexpectedValueError, match="buffer"):
            async with session.map_as_completed(work, [1], buffer=-1):
                pass


async def test_an_error_raised_through_the_fan_outs_keeps_its_cause() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with TrioAPISession(
        url="http://h.test", transport=httpx.MockTransport(refuse), retries=0
    ) as session:

        async def fetch(n: int) -> object:
            return await session.get("x")

        with pytest.raises(errors.ConnectionError) as mapped:
            await session.map(fetch, [1, 2])
        assert isinstance(mapped.value.__cause__, httpx.ConnectError)
        with pytest.raises(errors.ConnectionError) as streamed:
            async with session.map_as_completed(fetch, [1]) as results:
                async for _ in results:
                    pass  # pragma: no cover - the call fails
        assert isinstance(streamed.value.__cause__, httpx.ConnectError)
        # An error of the consumer's own block, unwrapped from the nursery's group.
        with pytest.raises(errors.ConnectionError) as own:
            async with session.map_as_completed(fetch, []):
                await session.get("x")
        assert isinstance(own.value.__cause__, httpx.ConnectError)


async def test_a_range_too_long_for_len_is_still_a_lazy_stream() -> None:
    # len(range(2**64)) raises OverflowError: map refused the lazy stream fan-out.md
    # promises.
    async def work(n: int) -> int:
        return n

    async with api() as session:
        seen = []
        async with session.map_as_completed(work, range(2**64), limit=4) as results:
            async for value in results:
                seen.append(value)
                if len(seen) == 10:
                    break
    assert len(seen) == 10


async def test_a_failing_items_iterable_cancels_the_stream_instead_of_ending_it() -> None:
    # The worker's error skipped the pool's failure record, and the last worker closed
    # the channel: the consumer's loop ended as if every item were done ("commit"),
    # and only then did the error come out of the block.
    clean_ends = 0
    async with api() as session:
        for _ in range(10):  # the scheduler's order varies from run to run
            with pytest.raises(ValueError, match="bad input row"):
                async with session.map_as_completed(work, rows(), limit=1, buffer=0) as results:
                    async for _ in results:
                        pass
                    clean_ends += 1
    assert clean_ends == 0


async def test_a_calls_interrupt_cancels_the_stream_instead_of_ending_it() -> None:
    async def work(n: int) -> int:
        await trio.lowlevel.checkpoint()
        if n == 2:
            raise KeyboardInterrupt
        return n

    clean_ends = 0
    async with api() as session:
        for _ in range(10):
            with pytest.raises(KeyboardInterrupt):
                async with session.map_as_completed(work, range(5), limit=1) as results:
                    async for _ in results:
                        pass
                    clean_ends += 1
    assert clean_ends == 0


# ------------------------------------------------------------------ fn that is no async function


def _counting(pulled: list[int]) -> Iterator[int]:
    for n in range(100):
        pulled.append(n)
        yield n


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_fn_that_is_not_callable_is_refused_before_any_item(streamed: bool) -> None:
    # Every worker failed with a bare TypeError ("'NoneType' object is not callable").
    pulled: list[int] = []
    async with api() as session:
        with trio.fail_after(5), pytest.raises(errors.UnexpectedValueError, match="NoneType"):
            if streamed:
                async with session.map_as_completed(None, _counting(pulled)):  # type: ignore[arg-type]
                    pass
            else:
                await session.map(None, _counting(pulled), limit=4)  # type: ignore[arg-type]
    assert pulled == []


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_sync_fn_fails_as_a_call_of_fn_fails(streamed: bool) -> None:
    # `await` of its int raised a bare TypeError; now an UnexpectedValueError naming it,
    # raised as itself (no ExceptionGroup), the pool cancelled after that one call.
    calls: list[int] = []

    def double(n: int) -> int:
        calls.append(n)
        return n * 2

    async with api() as session:
        with (
            trio.fail_after(5),
            pytest.raises(
                errors.UnexpectedValueError,
                match="fn must be an async function; it returned a int",
            ),
        ):
            if streamed:
                async with session.map_as_completed(double, range(100), limit=10) as results:  # type: ignore[arg-type]
                    async for _ in results:
                        pass
            else:
                await session.map(double, range(100), limit=10)  # type: ignore[arg-type]
    assert calls == [0]


async def test_a_lambda_returning_a_coroutine_is_an_async_fn() -> None:
    async def work(n: int) -> int:
        await trio.lowlevel.checkpoint()
        return n + 1

    async with api() as session:
        assert await session.map(lambda n: work(n), range(5), limit=2) == [1, 2, 3, 4, 5]
