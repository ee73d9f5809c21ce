"""The test servers themselves work, checked with a plain ``httpx.AsyncClient``."""

from __future__ import annotations

import httpx
import pytest
import trio
from servers import (
    RecordedRequest,
    Respond,
    TrioTestServer,
    close_after_response,
    disconnect,
    reset,
    respond,
    stall,
)

# --- Trio test server ----------------------------------------------------------------


async def test_scripted_sequence_is_served_in_order(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/flaky", [503, 503, 200], retry_after=1)

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        answers = [await client.get("/flaky") for _ in range(4)]

    assert [r.status_code for r in answers] == [503, 503, 200, 200]  # last step repeats
    assert [r.headers.get("retry-after") for r in answers] == ["1", "1", None, None]
    assert answers[0].json() == {"ok": False, "status": 503}
    assert answers[2].json() == {"ok": True}
    assert [r.path for r in trio_server.requests] == ["/flaky"] * 4


async def test_unscripted_path_gets_404(trio_server: TrioTestServer) -> None:
    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404


async def test_request_details_are_recorded(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/items", respond(201, json={"id": 7}), method="POST")
    before = trio.current_time()

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        response = await client.post(
            "/items?tag=a&tag=b", json={"name": "x"}, headers={"X-Trace": "abc"}
        )

    assert response.status_code == 201
    assert response.json() == {"id": 7}
    [request] = trio_server.requests
    assert (request.method, request.path, request.query) == ("POST", "/items", "tag=a&tag=b")
    assert request.params == {"tag": ["a", "b"]}
    assert request.header("x-trace") == "abc"
    assert request.header("Content-Type") == "application/json"
    assert request.json() == {"name": "x"}
    assert request.body == b'{"name":"x"}'
    assert before <= request.arrived_at <= trio.current_time()
    assert request.connection_id == 1


async def test_reset_is_a_transport_error(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/boom", [reset(), respond(200)])

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get("/boom")
        assert (await client.get("/boom")).status_code == 200  # the next step

    # The reset request was read and recorded before the connection was aborted.
    assert [r.connection_id for r in trio_server.requests] == [1, 2]


async def test_disconnect_is_a_remote_protocol_error(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/gone", disconnect())

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/gone")


async def test_stall_longer_than_timeout_is_a_read_timeout(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/slow", stall(1.0))
    # A ReadTimeout is giving up on the timeout: after the stall the server answers.
    async with httpx.AsyncClient(base_url=trio_server.base_url, timeout=0.2) as client:
        with trio.fail_after(5), pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")


async def test_short_stall_then_answers(trio_server: TrioTestServer) -> None:
    trio_server.app.script("/later", stall(0.05, then=respond(202, body="done")))

    async with httpx.AsyncClient(base_url=trio_server.base_url, timeout=2.0) as client:
        response = await client.get("/later")

    assert (response.status_code, response.text) == (202, "done")


async def test_keep_alive_reuses_one_connection(trio_server: TrioTestServer) -> None:
    trio_server.app.responses("/ping", [200])

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        for _ in range(3):
            assert (await client.get("/ping")).status_code == 200
        assert trio_server.open_connections == 1

    assert {r.connection_id for r in trio_server.requests} == {1}
    assert trio_server.connections_accepted == 1
    # The server notices the client's close only once it runs again, so wait for it.
    await trio_server.wait_until(lambda: trio_server.open_connections == 0, timeout=1.0)


async def test_close_after_response_forces_a_new_connection(
    trio_server: TrioTestServer,
) -> None:
    trio_server.app.script("/once", [close_after_response(), respond(200)])

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        first = await client.get("/once")
        second = await client.get("/once")

    assert first.headers["connection"] == "close"
    assert second.status_code == 200
    assert [r.connection_id for r in trio_server.requests] == [1, 2]


async def test_handlers_compute_responses_from_the_request(
    trio_server: TrioTestServer,
) -> None:
    # How a paginated collection is scripted: a handler, no server changes.
    items = list(range(5))

    def page(request: RecordedRequest) -> Respond:
        offset = int(request.params.get("offset", ["0"])[0])
        body = {"items": items[offset : offset + 2], "next": offset + 2}
        return respond(json=body if offset + 2 < len(items) else {**body, "next": None})

    trio_server.app.script("/things", page)

    collected: list[int] = []
    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        offset: int | None = 0
        for _ in range(10):
            if offset is None:
                break
            data = (await client.get("/things", params={"offset": offset})).json()
            collected += data["items"]
            offset = data["next"]

    assert collected == items
    assert len(trio_server.requests) == 3


async def test_async_handler_can_wait_for_the_test(trio_server: TrioTestServer) -> None:
    release = trio.Event()

    async def gated(request: RecordedRequest) -> Respond:
        await release.wait()
        return respond(json={"released": True})

    trio_server.app.script("/gate", gated)
    results: list[int] = []

    async with (
        httpx.AsyncClient(base_url=trio_server.base_url) as client,
        trio.open_nursery() as nursery,
    ):

        async def fetch() -> None:
            results.append((await client.get("/gate")).status_code)

        nursery.start_soon(fetch)
        await trio_server.wait_until(lambda: len(trio_server.requests) == 1)
        assert results == []  # held by the handler
        release.set()

    assert results == [200]


async def test_handler_error_answers_500_and_is_kept(trio_server: TrioTestServer) -> None:
    def broken(request: RecordedRequest) -> Respond:
        raise KeyError("oops")

    trio_server.app.script("/bug", broken)

    async with httpx.AsyncClient(base_url=trio_server.base_url) as client:
        response = await client.get("/bug")

    assert response.status_code == 500
    assert "KeyError" in response.text
    assert [type(e) for e in trio_server.handler_errors] == [KeyError]
    trio_server.handler_errors.clear()  # expected here; the fixture would fail the test


# --- httpbin -------------------------------------------------------------------------


async def test_httpbin_get(httpbin_url: str) -> None:
    async with httpx.AsyncClient(base_url=httpbin_url) as client:
        response = await client.get("/get", params={"q": "1"})
    assert response.status_code == 200
    assert response.json()["args"] == {"q": "1"}


async def test_httpbin_status_503(httpbin_url: str) -> None:
    async with httpx.AsyncClient(base_url=httpbin_url) as client:
        response = await client.get("/status/503")
    assert response.status_code == 503


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/status/418", 418),
        ("GET", "/redirect/2", 200),  # followed to /get
        ("GET", "/json", 200),
        ("GET", "/user-agent", 200),
        ("GET", "/headers", 200),
        ("POST", "/post", 200),
    ],
)
async def test_httpbin_endpoints(httpbin_url: str, method: str, path: str, status: int) -> None:
    async with httpx.AsyncClient(base_url=httpbin_url, follow_redirects=True) as client:
        response = await client.request(method, path, json={"a": 1} if method == "POST" else None)
    assert response.status_code == status
    if method == "POST":
        assert response.json()["json"] == {"a": 1}
