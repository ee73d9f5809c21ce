"""Errors survive copy.copy and a pickle round trip (to another process, a thread pool).

``Exception.__reduce__`` replays ``cls(*args)``, which constructors taking a response
cannot take; the errors are restored from their state instead.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import httpx
import pytest

from trestfly import RetryRecord, errors


def answered(status: int, url: str, content: bytes = b'{"error": "no"}') -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", url), content=content)


class QuotaError(errors.TooManyRequestsError):
    """An SDK's own error, with a constructor of its own."""

    def __init__(self, response: httpx.Response, **kwargs: Any) -> None:
        super().__init__(response, **kwargs)
        self.quota = response.json()["error"]


def round_trips(error: BaseException) -> list[Any]:
    return [copy.copy(error), copy.deepcopy(error), pickle.loads(pickle.dumps(error))]


@pytest.mark.parametrize("cls", [errors.APIError, errors.NotFoundError, QuotaError])
def test_an_api_error_keeps_its_attributes_and_hidden_message(
    cls: type[errors.APIError],
) -> None:
    error = cls(answered(404, "http://api.test/x?token=s3cret"), retries=2, retry_after=1.5)
    error.history = (RetryRecord(1, 503, None, 0.1, None, True),)
    error._show_url("http://api.test/x?REDACTED")  # as the session shows it
    error.add_note("while fetching x")
    for restored in round_trips(error):
        assert type(restored) is cls
        assert str(restored) == str(error) and restored.args == error.args
        assert "s3cret" not in str(restored)  # not rebuilt from the URL
        assert (restored.code, restored.retries, restored.retry_after) == (404, 2, 1.5)
        assert restored.history == error.history
        assert restored.__notes__ == ["while fetching x"]
        assert restored.response.json() == {"error": "no"}
        assert restored.response.request.url == error.response.request.url
    assert pickle.loads(pickle.dumps(error)).__dict__.keys() == error.__dict__.keys()


def test_a_decode_error_and_the_plain_errors_round_trip() -> None:
    decode = errors.ResponseDecodeError(answered(200, "http://api.test/x", b"{not"), "bad")
    plain = [
        errors.TimeoutError("slow"),
        errors.ConnectionError("down"),
        errors.UnexpectedValueError("bad"),
        errors.PaginationError("gap"),
    ]
    for error in [decode, *plain]:
        for restored in round_trips(error):
            assert type(restored) is type(error) and str(restored) == str(error)
    assert pickle.loads(pickle.dumps(decode)).response.content == b"{not"


def test_body_limit_is_exported() -> None:
    import trestfly.errors

    assert "BODY_LIMIT" in trestfly.errors.__all__
