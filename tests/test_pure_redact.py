"""What is logged about an attempt, with secrets removed."""

import dataclasses
import datetime
import json
from typing import Any

import httpx
import pytest

from trestfly._redact import describe_attempt, is_restricted, to_log_text
from trestfly._safe_url import safe_url


def describe(request_kwargs: dict[str, Any], **kw: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "method": "POST",
        "url": "http://h/users",
        "attempt": 1,
        "request_kwargs": request_kwargs,
        "restricted_paths": frozenset({"login", "v1/token"}),
        "redact_fields": (),
        "redact_value": "REDACTED",
    }
    arguments.update(kw)
    return describe_attempt(**arguments)


def test_restricted_paths_match_whole_segments_at_the_end_of_the_url_path() -> None:
    assert is_restricted("http://h/login/", {"login"})
    assert is_restricted("http://h/login", {"/login"})
    assert is_restricted("https://api.example.com/v1/token", {"v1/token/"})
    assert is_restricted("http://h/api/v2/auth/login?mfa=1", {"auth/login"})
    assert is_restricted("http://h/api/Auth//Login", {"auth/login"})  # other spellings
    assert not is_restricted("http://h/login/extra", {"login"})
    assert not is_restricted("http://h/blogin", {"login"})
    assert not is_restricted("http://h/users", set())


@pytest.mark.parametrize(
    "url",
    ["http://h/login", "http://h/api/v1/login/?mfa=1", "https://other.example/v1/login"],
)
def test_restricted_path_hides_params_and_body(url: str) -> None:
    # The call may name the path with a query string or as an absolute URL: the URL
    # that is sent is what counts.
    extra = describe({"params": {"u": "a"}, "json": {"password": "hunter2"}}, url=url)
    assert extra["trestfly_params"] == "REDACTED"
    assert extra["trestfly_body"] == "REDACTED"
    assert "hunter2" not in json.dumps(extra, default=str)


def test_redact_fields_at_any_depth_without_mutating() -> None:
    body = {"user": {"password": "p1", "items": [{"secret": "s1"}, {"ok": 1}]}, "password": "p2"}
    extra = describe({"json": body}, redact_fields=("password", "secret"), redact_value="***")
    assert extra["trestfly_body"] == {
        "user": {"password": "***", "items": [{"secret": "***"}, {"ok": 1}]},
        "password": "***",
    }
    assert body["password"] == "p2"


def test_secret_headers_are_never_logged() -> None:
    extra = describe(
        {
            "headers": {
                "Authorization": "Bearer t",
                "COOKIE": "c=1",
                "Proxy-Authorization": "x",
                "X-Trace": "ok",
            }
        }
    )
    assert extra["trestfly_headers"] == {
        "Authorization": "REDACTED",
        "COOKIE": "REDACTED",
        "Proxy-Authorization": "REDACTED",
        "X-Trace": "ok",
    }


def test_unserialisable_values_do_not_crash() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    extra = describe({"params": {"since": moment}, "data": {"raw": b"\x00\x01"}})
    text = to_log_text(extra["trestfly_params"]) + to_log_text(extra["trestfly_body"])
    assert "datetime.datetime(2026, 1, 2, 3, 4, 5)" in text
    assert "b'\\\\x00\\\\x01'" in text
    circular: list[Any] = []
    circular.append(circular)
    assert to_log_text(circular)


def test_objects_json_cannot_express_are_named_not_shown() -> None:
    # A dataclass (a model) given as json= was logged through its repr, password and
    # all, before httpx refused it; the redaction walks mappings and lists only.
    @dataclasses.dataclass
    class Login:
        user: str
        password: str

    secret = Login("ann", "S3CRET")
    extra = describe({"json": secret})
    assert extra["trestfly_body"] == "<Login object>"
    extra = describe({"json": {"login": secret, "ids": (1, secret)}, "params": {"who": secret}})
    assert "S3CRET" not in repr(extra)
    assert extra["trestfly_body"] == {"login": "<Login object>", "ids": (1, "<Login object>")}
    text = to_log_text(extra["trestfly_params"]) + to_log_text(extra["trestfly_body"])
    assert "S3CRET" not in text and "<Login object>" in text
    # A value that is its text is still shown (httpx sends a date, a UUID as text).
    day = datetime.date(2026, 1, 2)
    assert describe({"json": {"day": day}})["trestfly_body"] == {"day": day}


def test_content_and_files_are_summarised() -> None:
    assert describe({"content": b"abc"})["trestfly_body"] == "<3 bytes of content>"
    assert describe({"files": {"upload": b"x"}})["trestfly_body"] == "<files ['upload']>"


def test_params_as_pairs_are_redacted_too() -> None:
    extra = describe({"params": [("token", "t1"), ("page", 2)]}, redact_fields=("token",))
    assert extra["trestfly_params"] == [("token", "REDACTED"), ("page", 2)]


def test_credential_names_are_hidden_without_options() -> None:
    extra = describe(
        {
            "params": "api_key=S3CRET&page=2",  # a query string, as httpx accepts
            "json": {"client_secret": "S3CRET", "name": "n"},
            "headers": {"X-Api-Key": "S3CRET", "X-ApiKeys": "accessKey=S3CRET", "Accept": "a"},
        },
        url="https://user:S3CRET@h/users?access_token=S3CRET&q=x",
    )
    assert "S3CRET" not in json.dumps(extra, default=str)
    assert extra["trestfly_params"] == {"api_key": "REDACTED", "page": "2"}
    assert extra["trestfly_body"] == {"client_secret": "REDACTED", "name": "n"}
    assert extra["trestfly_url"] == "https://h/users?access_token=REDACTED&q=x"
    assert extra["trestfly_headers"]["Accept"] == "a"


def test_credential_names_are_hidden_whatever_their_spelling() -> None:
    secrets = {
        "Password": "S1",
        "clientSecret": "S2",
        "accessToken": "S3",
        "API_KEY": "S4",
        "X-Amz-Credential": "S5",
        "SessionId": "S6",  # the caller's field, spelled otherwise
        "user_password": "S7",
    }
    extra = describe(
        {
            "params": {**secrets, "page": 2},
            "json": {"nested": [dict(secrets)], "name": "n", "keyword": "k"},
            "headers": {
                "Private-Token": "S8",
                "X-Auth-Key": "S9",
                "X-Session-Id": "S10",
                "Ocp-Apim-Subscription-Key": "S11",
                "X-Vault-Token": "S12",
                "Accept": "a",
            },
        },
        redact_fields=("sessionid",),
    )
    text = json.dumps(extra, default=str)
    assert not [value for value in ("S1", "S2", "S3", "S4", "S5", "S6", "S7") if value in text]
    assert not [f"S{n}" for n in range(8, 13) if f'"S{n}"' in text]
    assert extra["trestfly_params"]["page"] == 2
    assert extra["trestfly_body"]["name"] == "n"
    assert extra["trestfly_body"]["keyword"] == "k"
    assert extra["trestfly_headers"]["Accept"] == "a"


def test_a_url_with_credential_like_query_names_is_shown_without_their_values() -> None:
    shown = safe_url("https://h/a?accessToken=t1&X-Goog-Api-Key=t2&page=3")
    assert shown == "https://h/a?accessToken=REDACTED&X-Goog-Api-Key=REDACTED&page=3"
    shown = safe_url("https://api.ipstack.com/check?access_key=t1&fields=ip&sort_key=ip")
    assert shown == "https://api.ipstack.com/check?access_key=REDACTED&fields=ip&sort_key=ip"


@pytest.mark.parametrize(
    "params",
    [
        "tag=a&tag=b&token=T1&token=T2&page=2",
        b"tag=a&tag=b&token=T1&token=T2&page=2",
        httpx.QueryParams(
            [("tag", "a"), ("tag", "b"), ("token", "T1"), ("token", "T2"), ("page", "2")]
        ),
        {"tag": ["a", "b"], "token": ["T1", "T2"], "page": "2"},
    ],
)
def test_repeated_query_names_keep_every_value(params: Any) -> None:
    # QueryParams.items() keeps the first value only: the log would show another request.
    extra = describe({"params": params})
    assert extra["trestfly_params"] == {"tag": ["a", "b"], "token": "REDACTED", "page": "2"}


@pytest.mark.parametrize(
    "params",
    [
        "grant_type=authorization_code&grant_type=x&code=S3CRET",
        [("grant_type", "authorization_code"), ("grant_type", "x"), ("code", "S3CRET")],
        {"grant_type": ["authorization_code", "x"], "code": "S3CRET"},
    ],
)
def test_the_params_record_hides_what_the_url_hides(params: Any) -> None:
    # A repeated grant_type grouped into a list read as no grant type: the OAuth code
    # was logged in the params, hidden in the URL.
    extra = describe({"params": params})
    assert "S3CRET" not in json.dumps(extra["trestfly_params"])
    assert "S3CRET" not in safe_url(httpx.URL("https://h/x", params=params))
    # A secret inside one value ("a=1;token=..." given as a query string) likewise.
    extra = describe({"params": "a=1;token=S3CRET&b=2"})
    assert extra["trestfly_params"] == {"a": "1;token=REDACTED", "b": "2"}


def test_credential_names_ending_in_key_are_hidden_but_not_every_key() -> None:
    names = ("access_key", "secret_key", "private_key", "app_key", "application_key")
    body = {**{name: "S3CRET" for name in names}, "AWS_SECRET_ACCESS_KEY": "S3CRET"}
    extra = describe(
        {"params": "subscription-key=S3CRET&sort_key=name", "json": {**body, "sort_key": "id"}}
    )
    assert "S3CRET" not in json.dumps(extra, default=str)
    assert extra["trestfly_params"] == {"subscription-key": "REDACTED", "sort_key": "name"}
    assert extra["trestfly_body"]["sort_key"] == "id"


def test_redact_fields_apply_to_query_strings_and_form_strings_are_summarised() -> None:
    extra = describe(
        {"params": b"Session=S3CRET&x=1", "data": b"password=S3CRET&user=u"},
        redact_fields=("session",),
    )
    assert extra["trestfly_params"] == {"Session": "REDACTED", "x": "1"}
    assert extra["trestfly_body"] == "<22 bytes of data>"
    # JSON serialised already is text whose keys cannot be told apart: its size only.
    extra = describe({"json": '{"password": "S3CRET"}'})
    assert extra["trestfly_body"] == "<22 characters of JSON text>"


def test_bytes_body_keys_and_json_given_as_bytes_are_redacted() -> None:
    # httpx sends data={b"password": ...} as password=..., but bytes names were never
    # matched (is_secret_name answered False for non-str), and json= given as bytes was
    # logged whole, where the same text as a str was summarised: both logged S3CRET.
    extra = describe(
        {"data": {b"username": "alice", b"Password": "S3CRET", b"client_secret": "S3CRET"}}
    )
    assert "S3CRET" not in repr(extra)  # bytes keys: json.dumps refuses them
    assert extra["trestfly_body"][b"username"] == "alice"
    extra = describe({"data": {b"sessionid": "S3CRET"}}, redact_fields=("SessionId",))
    assert extra["trestfly_body"] == {b"sessionid": "REDACTED"}
    extra = describe({"json": b'{"password": "S3CRET"}'})
    assert extra["trestfly_body"] == "<22 bytes of JSON text>"
    extra = describe({"json": bytearray(b'{"password": "S3CRET"}')})
    assert extra["trestfly_body"] == "<22 bytes of JSON text>"


def test_safe_url() -> None:
    assert safe_url("https://u:p@h:8443/a?page=3&Token=t#f") == (
        "https://h:8443/a?page=3&Token=REDACTED#f"
    )
    assert (
        safe_url("https://h/a?page=3&mine=m", ("MINE",), "gone") == "https://h/a?page=3&mine=gone"
    )
    assert safe_url("https://h/a?page=3") == "https://h/a?page=3"
    assert safe_url("http://[::1") == "<invalid URL>"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/x?a=1;b=2&token=S3CRET", "https://h/x?a=1;b=2&token=REDACTED"),
        ("https://h/x?expand&token=S3CRET", "https://h/x?expand&token=REDACTED"),
        (
            "https://h/x?fields=a,b&path=/a/b&sig=S3CRET",
            "https://h/x?fields=a,b&path=/a/b&sig=REDACTED",
        ),
        ("https://h/x?q=%ZZ&x=a+b%20c&token=S3CRET", "https://h/x?q=%ZZ&x=a+b%20c&token=REDACTED"),
        ("https://h/x?page=&token=S3CRET&page=", "https://h/x?page=&token=REDACTED&page="),
        ("https://h/x?a=1;token=S3CRET&b=2", "https://h/x?a=1;token=REDACTED&b=2"),
        ("https://h/x#x=a,b&access_token=S3CRET", "https://h/x#x=a,b&access_token=REDACTED"),
        # Written back decoded, %7F was a control character httpx refused (InvalidURL).
        ("https://h/x#a=%7F&access_token=S3CRET", "https://h/x#a=%7F&access_token=REDACTED"),
        # An "=" written %3D: the decoded fragment's pair, hidden as it always was.
        ("https://h/x#access_token%3DS3CRET&x=1", "https://h/x#access_token=REDACTED&x=1"),
    ],
)
def test_a_shown_url_keeps_every_byte_it_does_not_redact(url: str, shown: str) -> None:
    # Rebuilt from its pairs once anything was redacted, the query showed another
    # request: a=1%3Bb%3D2, fields=a%2Cb, %2Fa%2Fb, ?expand=, %25ZZ.
    assert safe_url(url) == shown
