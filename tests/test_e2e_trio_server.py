"""TrioAPISession end to end against the scriptable Trio test server.

The server records every request with its arrival time (``trio.current_time()`` in this
same Trio run), so retry *order* and *delay lower bounds* are checked from what actually
reached the server.  No test asserts how long anything took: a delay check says only
"the retry did not arrive before the server allowed it", a correctness property.
Client-side delays are kept tiny (backoff 0.01) and every test is bounded by LIMIT.
"""

from __future__ import annotations

import builtins
import email.utils
import itertools
import logging
import math
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from servers import (
    Disconnect,
    RecordedRequest,
    Reset,
    Respond,
    TrioTestServer,
    disconnect,
    json_status,
    open_trio_server,
    reset,
    respond,
    stall,
)

from trestfly import TrioAPISession, errors

LIMIT = 10.0
# Float rounding only: trio.sleep never wakes before its deadline on trio's clock.
EPSILON = 1e-3


class Server(TrioAPISession):
    _retries = 3
    _backoff = 0.01
    _timeout = 5.0


class EventHandler(logging.Handler):
    """Sets a Trio event when a record is emitted (logging runs in the emitting task)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.event = trio.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


@pytest.fixture
def retry_records() -> Iterator[EventHandler]:
    """Every ``trestfly.retry`` record; ``.event`` is set at the first one."""
    logger = logging.getLogger("trestfly.retry")
    handler = EventHandler()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def gaps(requests: list[RecordedRequest]) -> list[float]:
    return [b.arrived_at - a.arrived_at for a, b in itertools.pairwise(requests)]


def unused_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ status retries


async def test_503_503_200_is_retried_in_order(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/flaky", [503, 503, 200])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            response = await api.get("flaky", params={"q": "1"})
    assert response.json() == {"ok": True}
    assert [(r.method, r.path, r.query) for r in trio_server.requests] == [
        ("GET", "/flaky", "q=1")
    ] * 3
    # Retry n waits a random share of backoff * 2**(n-1); neither retry came before it.
    waited = [record.delay for record in response.extensions["trestfly.retry_history"]]
    assert waited[0] < 0.01 and waited[1] < 0.02
    first, second = gaps(trio_server.requests)
    assert first >= waited[0] - EPSILON and second >= waited[1] - EPSILON


async def test_too_many_failures_raise_with_the_last_response(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/down", [502, 503, 504, 503, 200])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, retries=3) as api:
            with pytest.raises(errors.ServiceUnavailableError) as caught:
                await api.get("down")
    assert caught.value.retries == 3
    assert caught.value.response.json() == {"ok": False, "status": 503}
    assert len(trio_server.requests) == 4  # retries + 1; the 200 was never asked for


async def test_retry_after_delta_seconds_is_honoured(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/limited", [429, 200], retry_after=0.05)
    with trio.fail_after(LIMIT):
        # backoff=0: without the hint the retry would follow at once.
        async with Server(url=trio_server.base_url, backoff=0) as api:
            response = await api.get("limited")
    assert response.status_code == 200
    assert trio_server.requests[0].header("user-agent") is not None
    [gap] = gaps(trio_server.requests)
    assert gap >= 0.05 - EPSILON


async def test_retry_after_http_date_is_honoured(trio_server: TrioTestServer) -> None:
    # (wall clock, trio clock, announced instant as a POSIX time), taken in the handler.
    announced: list[tuple[float, float, float]] = []

    def throttled(request: RecordedRequest) -> Respond:
        wall, now = time.time(), trio.current_time()
        # HTTP-dates have one-second resolution: a whole second at least 1 s ahead.
        instant = math.floor(wall) + 2.0
        announced.append((wall, now, instant))
        return respond(503, retry_after=email.utils.formatdate(instant, usegmt=True))

    trio_server.app.script("/dated", [throttled, json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, backoff=0) as api:
            result = await api.get("dated", box=True)

    assert result.ok is True
    assert len(trio_server.requests) == 2
    [(wall, now, instant)] = announced
    assert trio_server.requests[1].header("user-agent") is not None
    # Map the announced wall-clock instant onto trio's clock through the pair of
    # readings taken together in the handler; the retry must not arrive before it.
    # (Both clocks advance at the same rate over these two seconds.)
    retry_arrived = trio_server.requests[1].arrived_at
    assert retry_arrived >= now + (instant - wall) - 0.01


@pytest.mark.parametrize(
    ("server_ahead", "hint"),
    # Two of the four: each waits its 2 s of real time (Date has whole seconds); the
    # clock's reading itself is tested without a server (test_pure_retry_after).
    [(-3600, "retry-after"), (3600, "reset")],
    ids=["server-behind-retry-after", "server-ahead-reset"],
)
async def test_dated_hints_of_a_server_whose_clock_is_off_are_read_by_its_date(
    trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture, server_ahead: int, hint: str
) -> None:
    # A server an hour off this machine's clock, its Date saying so: an instant 2 s ahead
    # of its own clock was read against ours as an hour past (a retry at once, into the
    # limit) or an hour ahead (a wait far beyond max_retry_after: the call gave up).
    announced: list[tuple[float, float]] = []  # (trio clock, seconds to the instant)

    def throttled(request: RecordedRequest) -> Respond:
        wall = time.time()
        server_now = wall + server_ahead
        instant = math.floor(server_now) + 2.0
        announced.append((trio.current_time(), instant - server_now))
        headers = {"date": email.utils.formatdate(server_now, usegmt=True)}
        if hint == "reset":  # GitHub's spent primary quota
            headers |= {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(instant))}
            return respond(429, headers=headers)
        headers["retry-after"] = email.utils.formatdate(instant, usegmt=True)
        return respond(429, headers=headers)

    trio_server.app.script("/skewed", [throttled, json_status(200)])
    with trio.fail_after(LIMIT), caplog.at_level(logging.WARNING, logger="trestfly.retry"):
        async with Server(url=trio_server.base_url, backoff=0) as api:
            result = await api.get("skewed", box=True)

    assert result.ok is True
    assert len(trio_server.requests) == 2
    [(now, wait)] = announced
    assert trio_server.requests[1].arrived_at >= now + wait - 0.01
    [record] = [r for r in caplog.records if "clock of" in r.getMessage()]
    side = "behind" if server_ahead < 0 else "ahead of"
    # Date has whole seconds: the server's clock reads up to a second more than it says.
    assert re.search(rf"is 36(00|01) s {side} this machine's|is 3599 s {side}", record.getMessage())
    assert record.trestfly_clock_ahead == pytest.approx(-server_ahead, abs=2)  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_location_that_is_no_url_is_a_bad_response_not_retried(
    trio_server: TrioTestServer, method: str
) -> None:
    # httpx refuses it as a RemoteProtocolError, like a cut-off answer's: a GET was
    # retried `retries` times into the same answer, then failed as a ConnectionError.
    trio_server.app.script("/moved", respond(302, headers={"location": "http://[::zz]/items"}))
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, backoff=0) as api:
            with pytest.raises(errors.BadResponseError, match="redirects to a URL") as caught:
                await api._request(method, "moved")
            assert api.stats.attempts == 1
    assert len(trio_server.requests) == 1
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert "zz" not in str(caught.value)  # httpx's words, not the Location it quotes


async def test_huge_retry_after_fails_at_once(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/quota", [429, 200], retry_after=3600)
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            with pytest.raises(errors.TooManyRequestsError) as caught:
                await api.get("quota")
    assert caught.value.retry_after == 3600
    assert caught.value.retries == 0
    assert caught.value.code == 429
    assert len(trio_server.requests) == 1


async def test_retry_request_hook_refreshes_the_token(trio_server: TrioTestServer) -> None:
    seen: list[tuple[int | None, int]] = []

    class Refreshing(Server):
        async def _retry_request(
            self, response: httpx.Response | None, retries: int, **kwargs: Any
        ) -> dict[str, Any]:
            seen.append((None if response is None else response.status_code, retries))
            headers = dict(kwargs.get("headers") or {})
            headers["Authorization"] = f"Bearer fresh-{retries}"
            return {**kwargs, "headers": headers}

    trio_server.app.responses("/me", [401, 200])
    with trio.fail_after(LIMIT):
        async with Refreshing(url=trio_server.base_url) as api:
            result = await api.get(
                "me", headers={"Authorization": "Bearer stale", "X-Keep": "k"}, retry_on=[401]
            )
    assert result.status_code == 200
    assert seen == [(401, 1)]
    assert [r.header("authorization") for r in trio_server.requests] == [
        "Bearer stale",
        "Bearer fresh-1",
    ]
    assert [r.header("x-keep") for r in trio_server.requests] == ["k", "k"]


async def test_resp_error_check_rejects_an_error_document(trio_server: TrioTestServer) -> None:
    class Strict(Server):
        async def _resp_error_check(
            self, response: httpx.Response, **kwargs: Any
        ) -> httpx.Response:
            if response.json().get("error"):
                raise errors.APIError(response)
            return response

    trio_server.app.script("/doc", [respond(200, json={"error": "nope"}), json_status(200)])
    with trio.fail_after(LIMIT):
        async with Strict(url=trio_server.base_url) as api:
            with pytest.raises(errors.APIError) as caught:
                await api.get("doc")
            assert await api.get("doc", conv_json=True) == {"ok": True}
    assert caught.value.code == 200
    assert len(trio_server.requests) == 2  # a rejected 2xx is not retried


# ------------------------------------------------------------------ transport failures


@pytest.mark.parametrize("failure", [reset(), disconnect()], ids=["reset", "disconnect"])
async def test_broken_connection_is_retried_for_get(
    trio_server: TrioTestServer, failure: Reset | Disconnect
) -> None:
    trio_server.app.script("/items", [failure, json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            result = await api.get("items", conv_json=True)
    assert result == {"ok": True}
    assert [r.method for r in trio_server.requests] == ["GET", "GET"]
    assert [r.connection_id for r in trio_server.requests] == [1, 2]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (
            lambda asked: (
                b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=S3CR3T\x00\r\nContent-Length: 0\r\n\r\n"
            ),
            "illegal header line",
        ),
        # A peer that does not speak HTTP and echoes the request: its first line, with
        # the query's api_key, was quoted as the "illegal status line".
        (lambda asked: asked, "illegal status line"),
        (
            lambda asked: (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz;token=S3CR3T\r\n"
            ),
            "illegal chunk header",
        ),
    ],
    ids=["header-line", "echoed-request", "chunk-header"],
)
async def test_a_malformed_line_of_the_answer_is_not_quoted(
    answer: Callable[[bytes], bytes], problem: str
) -> None:
    # h11 refuses the answer quoting the bytes it could not read, here a Set-Cookie
    # holding a session, the request's own api_key echoed back, a chunk header's
    # token: the ConnectionError quoted them, and so did its cause.
    answered = 0

    async def handler(stream: trio.SocketStream) -> None:
        nonlocal answered
        with trio.move_on_after(LIMIT):
            asked = await stream.receive_some(65536)
            answered += 1
            await stream.send_all(answer(asked))
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_tcp, handler, 0, host="127.0.0.1")
        (listener,) = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        with trio.fail_after(LIMIT):
            async with Server(url=f"http://127.0.0.1:{port}", retries=1) as api:
                with pytest.raises(errors.ConnectionError) as caught:
                    await api.get("items", params={"api_key": "S3CR3T"})
        nursery.cancel_scope.cancel()
    error = caught.value
    assert answered == 2  # a GET's broken answer is retried, as any read failure
    assert f"{problem} in the answer (not shown" in str(error)
    chain = [error, error.__cause__, error.__cause__.__cause__, error.__cause__.__context__]
    assert not any("S3CR3T" in repr(part) for part in chain)


@pytest.mark.parametrize("failure", [reset(), disconnect()], ids=["reset", "disconnect"])
async def test_broken_connection_is_not_retried_for_post(
    trio_server: TrioTestServer, failure: Reset | Disconnect
) -> None:
    trio_server.app.script("/items", [failure, json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            with pytest.raises(errors.ConnectionError) as caught:
                await api.post("items", json={"charge": 100})
    assert isinstance(caught.value, builtins.ConnectionError)
    assert isinstance(caught.value.__cause__, httpx.ReadError | httpx.RemoteProtocolError)
    assert "after 0 retries" in str(caught.value)
    # The server got the POST once; it must never be sent twice.
    assert [(r.method, r.json()) for r in trio_server.requests] == [("POST", {"charge": 100})]


async def test_reset_on_a_reused_connection_is_retried(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/items", [json_status(200), reset(), json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            assert (await api.get("items")).status_code == 200
            assert (await api.get("items")).status_code == 200
    assert [r.connection_id for r in trio_server.requests] == [1, 1, 2]


async def test_post_after_the_server_closed_an_idle_connection() -> None:
    # Real servers close idle keep-alive connections; the client must not send a POST
    # into such a connection (where it would fail and, rightly, not be retried).
    with trio.fail_after(LIMIT):
        async with open_trio_server(keep_alive_timeout=0.05) as server:
            server.app.responses("/orders", [201])
            async with Server(url=server.base_url) as api:
                assert (await api.post("orders", json={"n": 1})).status_code == 201
                await server.wait_until(lambda: server.open_connections == 0)
                assert (await api.post("orders", json={"n": 2})).status_code == 201
    assert [r.json() for r in server.requests] == [{"n": 1}, {"n": 2}]
    assert [r.connection_id for r in server.requests] == [1, 2]


async def test_stall_past_the_timeout_is_retried_then_times_out(
    trio_server: TrioTestServer,
) -> None:
    trio_server.app.script("/slow", stall(30))
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, timeout=0.2, retries=1) as api:
            with pytest.raises(errors.TimeoutError) as caught:
                await api.get("slow")
    assert isinstance(caught.value, builtins.TimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert "after 1 retries" in str(caught.value)
    assert [r.method for r in trio_server.requests] == ["GET", "GET"]


async def test_stall_then_success_on_the_retry(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/slow", [stall(30), json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, timeout=0.2) as api:
            assert await api.get("slow", conv_json=True) == {"ok": True}
    assert len(trio_server.requests) == 2


async def test_stall_past_the_timeout_is_not_retried_for_post(
    trio_server: TrioTestServer,
) -> None:
    trio_server.app.script("/slow", [stall(30), json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, timeout=0.2) as api:
            with pytest.raises(errors.TimeoutError) as caught:
                await api.post("slow", json={})
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(trio_server.requests) == 1


async def test_deadline_keyword_against_a_stalling_server(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/slow", stall(30))
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:  # timeout 5 s, 3 retries
            with pytest.raises(errors.TimeoutError) as caught:
                await api.get("slow", deadline=0.2)
            assert isinstance(caught.value, builtins.TimeoutError)
            assert isinstance(caught.value.__cause__, trio.TooSlowError)
            assert "deadline of 0.2 s" in str(caught.value)
            # The session survives a call cancelled mid-flight.
            trio_server.app.responses("/fine", [200])
            assert (await api.get("fine")).status_code == 200
    assert [r.path for r in trio_server.requests] == ["/slow", "/fine"]


async def test_connection_refused_is_retried_then_raises(
    retry_records: EventHandler,
) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with trio.fail_after(LIMIT):
        async with Server(url=url, retries=2) as api:
            with pytest.raises(errors.ConnectionError) as get_error:
                await api.get("items")
            # Nothing reached a server, so even a POST may be retried.
            with pytest.raises(errors.ConnectionError) as post_error:
                await api.post("items", json={"a": 1})
    for caught in (get_error, post_error):
        assert isinstance(caught.value, builtins.ConnectionError)
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        assert "after 2 retries" in str(caught.value)
    retries = [
        (r.trestfly_method, r.trestfly_retry, r.trestfly_error)  # type: ignore[attr-defined]
        for r in retry_records.records
    ]
    assert retries == [
        ("GET", 1, "ConnectError"),
        ("GET", 2, "ConnectError"),
        ("POST", 1, "ConnectError"),
        ("POST", 2, "ConnectError"),
    ]


# ------------------------------------------------------------------ cancellation


async def test_outer_cancel_scope_ends_a_backoff(
    trio_server: TrioTestServer, retry_records: EventHandler
) -> None:
    trio_server.app.responses("/busy", [503, 200])
    with trio.fail_after(LIMIT):
        # backoff 5 s fits in the outer scope's 8 s, so the session does sleep it.
        async with Server(url=trio_server.base_url, backoff=5) as api:
            # The wait at the top of its bound (the draw is random otherwise).
            api._rng.random = lambda: 1.0  # type: ignore[method-assign]
            with trio.move_on_after(8) as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(api.get, "busy")
                    # The retry record is logged right before the backoff sleep, with no
                    # checkpoint between: once we run again, the request task is asleep.
                    await retry_records.event.wait()
                    scope.cancel()
            assert scope.cancelled_caught
            assert len(trio_server.requests) == 1  # the retry was never sent

            # The session (its limiter slot, its client) is still fine.
            result = await api.get("busy", conv_json=True)
    assert result == {"ok": True}
    assert len(trio_server.requests) == 2
    [record] = retry_records.records
    assert record.trestfly_delay == 5  # type: ignore[attr-defined]


async def test_outer_cancel_scope_ends_a_request_in_flight(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/slow", [stall(30), json_status(200)])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, max_concurrency=1) as api:
            with trio.move_on_after(8) as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(api.get, "slow")
                    await trio_server.wait_until(lambda: len(trio_server.requests) == 1)
                    scope.cancel()
            assert scope.cancelled_caught
            # With one slot only, this proves the cancelled request released it.
            assert await api.get("slow", conv_json=True) == {"ok": True}
    assert len(trio_server.requests) == 2


async def test_max_concurrency_bounds_what_reaches_the_server(
    trio_server: TrioTestServer,
) -> None:
    release = trio.Event()
    active = peak = 0

    async def held(request: RecordedRequest) -> Respond:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await release.wait()
        finally:
            active -= 1
        return respond(json={"n": int(request.params["n"][0])})

    trio_server.app.script("/held", held)
    results: dict[int, Any] = {}

    async def fetch(api: Server, n: int) -> None:
        results[n] = await api.get("held", params={"n": n}, conv_json=True)

    with trio.fail_after(LIMIT):
        async with (
            Server(url=trio_server.base_url, max_concurrency=3) as api,
            trio.open_nursery() as nursery,
        ):
            for n in range(12):
                nursery.start_soon(fetch, api, n)
            # The first three are held by the server until released.
            await trio_server.wait_until(lambda: len(trio_server.requests) >= 3)
            release.set()
    assert results == {n: {"n": n} for n in range(12)}
    assert peak == 3  # three held at once, never more
    assert len(trio_server.requests) == 12
    assert trio_server.connections_accepted <= 3  # one connection per slot at most


# ------------------------------------------------------------------ logging secrets


async def test_redact_fields_hide_secrets_on_every_retry(
    trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trestfly")
    trio_server.app.responses("/session", [503, 503, 200])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            await api.post(
                "session",
                params={"otp": "654321", "user": "ann"},
                json={"username": "ann", "password": "hunter2"},
                headers={"X-Api-Key": "key-abc", "Authorization": "Bearer tok-xyz"},
                redact_fields=["password", "otp", "X-Api-Key"],
            )

    # The server got the real values on every attempt ...
    assert len(trio_server.requests) == 3
    for request in trio_server.requests:
        assert request.json() == {"username": "ann", "password": "hunter2"}
        assert request.params == {"otp": ["654321"], "user": ["ann"]}
        assert request.header("x-api-key") == "key-abc"
        assert request.header("authorization") == "Bearer tok-xyz"
    # ... and no log record, message or structured extra, ever held one.
    attempts = [r for r in caplog.records if r.name == "trestfly.request"]
    assert [r.trestfly_attempt for r in attempts] == [1, 2, 3]  # type: ignore[attr-defined]
    for record in attempts:
        assert record.trestfly_body == {"username": "ann", "password": "REDACTED"}  # type: ignore[attr-defined]
    assert len([r for r in caplog.records if r.name == "trestfly.retry"]) == 2
    everything = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    for secret in ("hunter2", "654321", "key-abc", "tok-xyz"):
        assert secret not in everything


async def test_restricted_paths_never_log_params_or_body(
    trio_server: TrioTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    class Secret(Server):
        _restricted_paths = ("/auth/login/",)

    caplog.set_level(logging.DEBUG, logger="trestfly")
    trio_server.app.responses("/auth/login", [503, 200])
    with trio.fail_after(LIMIT):
        async with Secret(url=trio_server.base_url) as api:
            await api.post("auth/login", json={"password": "hunter2"}, params={"otp": "123456"})

    assert [r.json() for r in trio_server.requests] == [{"password": "hunter2"}] * 2
    assert [r.params for r in trio_server.requests] == [{"otp": ["123456"]}] * 2
    attempts = [r for r in caplog.records if r.name == "trestfly.request"]
    assert len(attempts) == 2
    for record in attempts:
        assert record.trestfly_body == "REDACTED"  # type: ignore[attr-defined]
        assert record.trestfly_params == "REDACTED"  # type: ignore[attr-defined]
    everything = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert "hunter2" not in everything and "123456" not in everything


# ------------------------------------------------------------------ lifecycle


async def test_leaving_the_context_closes_the_owned_client(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/ping", [200])
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url) as api:
            for _ in range(3):
                assert (await api.get("ping")).status_code == 200
            assert trio_server.open_connections == 1  # keep-alive while open
        await trio_server.wait_until(lambda: trio_server.open_connections == 0)
        with pytest.raises(errors.TrestflyError, match="not open"):
            await api.get("ping")
    assert {r.connection_id for r in trio_server.requests} == {1}


async def test_an_injected_client_is_left_open(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/ping", [200])
    with trio.fail_after(LIMIT):
        async with httpx.AsyncClient() as client:
            async with Server(url=trio_server.base_url, session=client) as api:
                await api.get("ping")
            assert not client.is_closed
            assert (await client.get(trio_server.url("/ping"))).status_code == 200
            assert trio_server.open_connections == 1  # the same pooled connection
        await trio_server.wait_until(lambda: trio_server.open_connections == 0)
    assert [r.connection_id for r in trio_server.requests] == [1, 1]
    # trestfly sent its User-Agent per request; the bare client sent its own.
    agents = [r.header("user-agent") or "" for r in trio_server.requests]
    assert agents[0].startswith("Integration/1.0 (")
    assert agents[1].startswith("python-httpx/")


async def test_failed_authenticate_propagates_and_closes_the_client(
    trio_server: TrioTestServer,
) -> None:
    class Login(Server):
        async def _authenticate(self, **kwargs: Any) -> None:
            await self.post("login", json={"password": kwargs["password"]})

    trio_server.app.responses("/login", [401])
    entered = False
    with trio.fail_after(LIMIT):
        with pytest.raises(errors.UnauthorizedError):
            async with Login(url=trio_server.base_url, password="wrong"):
                entered = True
        await trio_server.wait_until(lambda: trio_server.open_connections == 0)
    assert not entered
    assert len(trio_server.requests) == 1


async def test_deauthenticate_runs_while_the_client_is_still_open(
    trio_server: TrioTestServer,
) -> None:
    class Login(Server):
        async def _authenticate(self, **kwargs: Any) -> None:
            await self.post("login", json={"user": kwargs["user"]})

        async def _deauthenticate(self) -> None:
            await self.delete("login")

    trio_server.app.responses("/login", [200])
    trio_server.app.responses("/work", [200])
    with trio.fail_after(LIMIT):
        async with Login(url=trio_server.base_url, user="ann") as api:
            await api.get("work")
        await trio_server.wait_until(lambda: trio_server.open_connections == 0)
    assert [(r.method, r.path) for r in trio_server.requests] == [
        ("POST", "/login"),
        ("GET", "/work"),
        ("DELETE", "/login"),
    ]


@pytest.mark.parametrize("attempt", range(2))
async def test_a_call_connecting_when_the_session_closes_leaves_no_socket_open(
    trio_server: TrioTestServer, attempt: int
) -> None:
    """A call in another nursery is inside the connect when the session's block ends
    (its shards' pools are closed): its connection came back to a closed pool and the
    socket stayed open, the server still saw it seconds later."""
    trio_server.app.set_default(stall(0.05, json_status(200)))
    api = TrioAPISession(url=trio_server.base_url, retries=0, max_concurrency=1)
    outcome: list[str] = []

    async def call() -> None:
        try:
            await api.get("q")
            outcome.append("ok")
        except errors.TrestflyError as exc:
            outcome.append(type(exc).__name__)

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, api:
            nursery.start_soon(call)
            await trio_server.wait_until(lambda: trio_server.connections_accepted >= 1)
        await trio_server.wait_until(lambda: trio_server.open_connections == 0, timeout=3)
    assert len(outcome) == 1


def _slow_call(
    trio_server: TrioTestServer, method: str
) -> tuple[Server, list[Exception], Callable[[], Awaitable[None]]]:
    """A session, and a call of ``method`` to a path the server answers after 2 s that
    records what it raised (for a call still out when the session's block ends)."""
    trio_server.app.script("/slow", stall(2))
    api = Server(url=trio_server.base_url)
    caught: list[Exception] = []

    async def call() -> None:
        try:
            await api._request(method, "slow")
        except Exception as exc:
            caught.append(exc)

    return api, caught, call


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_call_the_closing_client_cuts_off_is_told_not_open(
    trio_server: TrioTestServer, method: str
) -> None:
    """The block ends while the server is still answering a call from another nursery:
    closing the client cuts the request, and the call says the session is not open (a
    GET's ReadError was retried into it, a POST's was a ConnectionError)."""
    api, caught, call = _slow_call(trio_server, method)

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery, api:
            nursery.start_soon(call)
            await trio_server.wait_until(lambda: len(trio_server.requests) == 1)
    assert [type(exc) for exc in caught] == [errors.SessionNotOpenError]
    stats = api.stats
    assert (stats.attempts, stats.retries, stats.transport_errors, stats.failures) == (1, 0, 1, 1)
    assert len(trio_server.requests) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_call_cut_off_by_leaving_is_not_sent_again_through_the_next_block(
    trio_server: TrioTestServer, method: str
) -> None:
    """Left and entered again at once: the cut-off call found the next block's client
    set and was a plain transport failure (a POST's ConnectionError; a GET retried
    through the new client, the server receiving it twice)."""
    api, caught, call = _slow_call(trio_server, method)

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            async with api:
                nursery.start_soon(call)
                await trio_server.wait_until(lambda: len(trio_server.requests) == 1)
            async with api:
                await trio.sleep(0.2)
    assert [type(exc) for exc in caught] == [errors.SessionNotOpenError]
    assert isinstance(caught[0].__cause__, httpx.TransportError)
    assert "the server may have received it" in str(caught[0])
    assert len(trio_server.requests) == 1


async def test_a_call_whose_injected_client_its_owner_closes_is_not_told_not_open(
    trio_server: TrioTestServer,
) -> None:
    """A session= client closed by its owner while a call is out, the session still
    open: the call said the session's block had ended (a SessionNotOpenError, an
    AttributeError too); it is the error the next call gets."""
    trio_server.app.script("/slow", stall(2))
    client = httpx.AsyncClient()
    caught: list[Exception] = []
    with trio.fail_after(LIMIT):
        async with Server(url=trio_server.base_url, session=client) as api:
            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    try:
                        await api.get("slow")
                    except Exception as exc:
                        caught.append(exc)

                nursery.start_soon(call)
                await trio_server.wait_until(lambda: len(trio_server.requests) == 1)
                await client.aclose()
            with pytest.raises(errors.TrestflyError, match="closed while the session is open"):
                await api.get("next")
    assert [type(exc) for exc in caught] == [errors.TrestflyError]
    assert "the session= client was closed while the session is open" in str(caught[0])
    assert "GET " in str(caught[0]) and "the server may have received it" in str(caught[0])
    assert isinstance(caught[0].__cause__, httpx.TransportError)
    assert len(trio_server.requests) == 1


async def test_a_sharded_transport_serves_again_after_a_close(trio_server: TrioTestServer) -> None:
    """A session built with ``transport=ShardedTransport(...)`` entered a second time (the
    session closes its transport on leaving): the transport closed, behind httpcore's
    back, the connection of every request of the new block as it came back, and the
    next request on it failed with a bare ValueError (file descriptor -1)."""
    from trestfly import ShardedTransport

    trio_server.app.set_default(respond(200, json={"ok": True}))
    sharded = ShardedTransport(max_connections=4)
    api = Server(url=trio_server.base_url, transport=sharded, max_concurrency=4)
    with trio.fail_after(LIMIT):
        for _ in range(2):
            async with api:
                for _ in range(3):
                    assert (await api.get("x")).json() == {"ok": True}
        # Used directly by httpx clients, one after another.
        transport = ShardedTransport(max_connections=2)
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(trio_server.url("/x"))).status_code == 200
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                assert (await client.get(trio_server.url("/x"))).status_code == 200
    assert len(trio_server.requests) == 10
