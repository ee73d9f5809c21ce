"""Log in on entering, refresh an expired token on a 401, log out on leaving.

A sketch of the usual OAuth-style client-credentials flow for a fictitious API:

* ``POST /oauth/token`` with the client's id and secret returns ``{"access_token": ...}``;
* every other call carries ``Authorization: Bearer <token>``, and a 401 means the token
  expired: fetch a new one and try again;
* ``DELETE /oauth/token`` revokes it.

Many tasks may hit the expired token at the same time: a lock and a comparison with the
token the failed request carried make sure only the first of them logs in again.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import trio

from trestfly import BudgetSettings, TrioAPISession, errors

TOKEN_PATH = "oauth/token"


class TokenAPI(TrioAPISession):
    """A client that authenticates with a client id and secret."""

    _base_path = "v1"
    #: Retry a 401 once the token is refreshed (added to 420, 429, 502, 503, 504).
    _retry_on = (401,)
    #: A short wait before the retry: a refresh is not an overload.
    _backoff = 0.1
    #: A 401 has no Retry-After, so its retry spends the retry budget (10 by default):
    #: with more tasks than that meeting the expired token at once, the others would
    #: fail.  One token per request in flight lets each retry its 401 once, and the
    #: budget still stops a storm of 5xx (refilled at 1 a second).
    _retry_budget = BudgetSettings(capacity=float(TrioAPISession._max_concurrency))
    #: Never log the parameters or the body of a login.
    _restricted_paths = (TOKEN_PATH,)
    _error_on_unexpected_input = True

    async def _authenticate(self, client_id: str = "", client_secret: str = "") -> None:
        self._credentials = {"client_id": client_id, "client_secret": client_secret}
        self._token_lock = trio.Lock()
        await self._login()

    async def _login(self) -> None:
        answer = await self.post(TOKEN_PATH, data=self._credentials, conv_json=True)
        self._session.headers["Authorization"] = f"Bearer {answer['access_token']}"

    async def _retry_request(
        self, response: httpx.Response | None, retries: int, **kwargs: Any
    ) -> dict[str, Any]:
        if response is None or response.status_code != 401:
            return kwargs  # a 429 or 503: retry as it is
        if response.request.url.path.endswith(TOKEN_PATH):
            raise errors.UnauthorizedError(response)  # the credentials are wrong: give up
        sent = response.request.headers.get("authorization")
        async with self._token_lock:
            if self._session.headers.get("authorization") == sent:
                await self._login()  # nobody refreshed it while we waited for the lock
        # The next attempt is built from the client's headers again: nothing to change
        # in kwargs (a per-call headers={"Authorization": ...} would override them).
        return kwargs

    async def _deauthenticate(self) -> None:
        # Shielded, with its own time limit: a body left by cancellation (a timeout, a
        # Ctrl-C) still logs out, and a dead server cannot hold the exit for long.
        with trio.move_on_after(5, shield=True), contextlib.suppress(errors.APIError):
            await self.delete(TOKEN_PATH)  # an APIError: the token is already gone

    async def me(self) -> Any:
        """The account the token belongs to."""
        return await self.get("me", conv_json=True)
