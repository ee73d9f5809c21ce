"""Type-checked, never run: the request keywords are typed for SDK authors.

CI runs ``mypy --strict tests/typing``.  Every ``# type: ignore[...]`` below marks a call
that must be an error; ``--strict`` reports an ignore that silences nothing, so if the
keywords stopped being checked (``**kwargs: Any`` again), these lines fail CI.
"""

from __future__ import annotations

from typing import Any, Unpack

import httpx

from trestfly import (
    APIEndpoint,
    RequestOptions,
    SessionOptions,
    TrestflyOptions,
    TrioAPISession,
)


class Users(APIEndpoint):
    _path = "users"

    async def search(self, **kwargs: Unpack[RequestOptions]) -> Any:
        # An SDK method passing its keywords through keeps them checked.
        return await self._get("search", **kwargs)

    async def named(self, q: str, **kwargs: Unpack[TrestflyOptions]) -> Any:
        # A method that sets params= itself passes trestfly's options through.
        return await self._get("search", params={"q": q}, **kwargs)

    async def valid(self) -> None:
        await self._get("1", box=True, params={"expand": None}, deadline=2.5)
        await self._post(json={"name": "x"}, retry_on=[502], redact_fields=("secret",))
        await self._put("1", data={"a": "b"}, use_base=False, conv_json=None)
        await self._patch("1", content=b"x", headers={"X-A": "1"}, timeout=5.0)
        await self._delete("1", follow_redirects=False, redact_value="***", retry_on=503)
        response: httpx.Response = await self._head("1", box_attrs={"frozen_box": True})
        del response
        await self.search(params={"q": "x"})
        await self.named("x", box=True, deadline=2.0, retry_on=[502])

    async def invalid(self) -> None:
        await self._get("1", bx=True)  # type: ignore[call-arg]
        await self._get("1", deadline="5")  # type: ignore[arg-type]
        await self.search(parms={"q": "x"})  # type: ignore[call-arg]
        await self.named("x", params={"q": "y"})  # type: ignore[call-arg]
        await self.named("x", deadline="5")  # type: ignore[arg-type]


async def session_calls(api: TrioAPISession) -> None:
    await api.get("users", params={"page": 2}, box=False, deadline=None)
    await api.post("users", json=[1, 2], retry_on={502, 504})
    await api.put("users/1", files={"f": b"x"}, data={"k": "v"})
    await api.patch("users/1", auth=("user", "pass"), cookies={"c": "1"})
    await api.delete("users/1", extensions={}, conv_json=True)
    await api.head("users")
    await api._request("GET", "users", redact_fields=["token"])
    await api.get("users", timeout_s=5)  # type: ignore[call-arg]
    await api.post("users", box="yes")  # type: ignore[arg-type]
    await api._request("GET", "users", retry_on="502")  # type: ignore[arg-type]


class AcmeAPI(TrioAPISession):
    # An SDK constructor passing the session's keywords on keeps them checked.
    def __init__(self, *, token: str | None = None, **kwargs: Unpack[SessionOptions]) -> None:
        super().__init__(token=token, **kwargs)


def constructors() -> None:
    AcmeAPI(token="t", retries=3, base_path="v2", throttle=None)
    AcmeAPI(retries="3")  # type: ignore[arg-type]
    AcmeAPI(tokn="oops")  # type: ignore[call-arg]
