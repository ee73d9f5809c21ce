"""Per-call option resolution: defaults < endpoint < call, validated."""

import inspect
import math
import typing
from collections.abc import AsyncIterator
from types import MappingProxyType

import httpx
import pytest
from box import Box

from trestfly import RequestOptions, SessionOptions, TrestflyOptions, TrioAPISession
from trestfly._options import (
    HTTPX_REQUEST_ARGS,
    TRESTFLY_OPTIONS,
    CallOptions,
    checked_method,
    drop_none_fields,
    resolve,
)
from trestfly.errors import UnexpectedValueError

DEFAULTS = CallOptions(
    box=False,
    box_attrs=MappingProxyType({}),
    conv_json=False,
    retry_statuses=frozenset({429, 503}),
    use_base=True,
    redact_fields=(),
    redact_value="REDACTED",
    deadline=None,
)


def test_typed_request_keywords_are_the_accepted_ones() -> None:
    # RequestOptions is what type checkers hold the verbs' keywords to, and resolve()
    # what the call accepts: a keyword in one and not the other is either refused by a
    # type checker though it works, or accepted by it and refused when the call runs.
    assert RequestOptions.__required_keys__ == frozenset()
    assert RequestOptions.__optional_keys__ == HTTPX_REQUEST_ARGS | TRESTFLY_OPTIONS
    assert TrestflyOptions.__optional_keys__ == TRESTFLY_OPTIONS
    assert TrestflyOptions.__required_keys__ == frozenset()
    # None is taken for every keyword but follow_redirects, typed bool alone, and auth,
    # which requests and httpx read two ways (typed Any, as httpx's own auth types are
    # private: the refusal says what to pass).
    for key in RequestOptions.__optional_keys__ - {"follow_redirects", "auth"}:
        resolve(DEFAULTS, {key: None})
    assert typing.get_type_hints(RequestOptions)["follow_redirects"] is bool
    with pytest.raises(UnexpectedValueError, match="follow_redirects must be True or False"):
        resolve(DEFAULTS, {"follow_redirects": None})
    with pytest.raises(UnexpectedValueError, match="auth=None is ambiguous"):
        resolve(DEFAULTS, {"auth": None})


def test_httpx_arguments_pass_through_untouched() -> None:
    headers = {"X-A": "1"}
    options, request = resolve(DEFAULTS, {"params": {"a": 1}, "headers": headers, "json": [1]})
    assert options is DEFAULTS
    assert request == {"params": {"a": 1}, "headers": headers, "json": [1]}
    assert request["headers"] is headers


def test_trestfly_options_are_consumed() -> None:
    options, request = resolve(
        DEFAULTS,
        {
            "box": True,
            "retry_on": [500],
            "use_base": False,
            "redact_fields": ["password"],
            "redact_value": "***",
            "deadline": 2,
            "box_attrs": {"frozen_box": True},
        },
    )
    assert request == {}
    assert options.box and not options.use_base
    assert options.retry_statuses == {429, 503, 500}
    assert options.redact_fields == ("password",)
    assert options.redact_value == "***"
    assert options.deadline == 2.0
    assert options.box_attrs == {"frozen_box": True}


def test_box_attrs_values_python_box_takes_are_kept() -> None:
    attrs = {
        "box_class": Box,
        "box_intact_types": (list,),
        "box_recast": {"id": int},
        "box_namespace": ("api",),
        "box_dots": True,
        "default_box": True,
    }
    options, _ = resolve(DEFAULTS, {"box_attrs": attrs})
    assert options.box_attrs == attrs


def test_none_inherits_the_default() -> None:
    options, _ = resolve(DEFAULTS, {"box": None, "conv_json": None})
    assert options is DEFAULTS


def test_single_status_code_is_accepted() -> None:
    options, _ = resolve(DEFAULTS, {"retry_on": 500})
    assert 500 in options.retry_statuses


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"verify": False}, "unknown request keyword 'verify'"),
        ({"allow_redirects": True}, "'allow_redirects'"),
        ({"retry_on": ["500"]}, "retry_on"),
        ({"retry_on": [True]}, "retry_on"),
        ({"retry_on": [700]}, "retry_on"),
        ({"retry_on": [503, 202]}, "retry_on cannot hold successes \\[202\\]"),
        # httpx reads past a 1xx: listed, it did nothing, silently.
        ({"retry_on": [100, 503]}, "retry_on cannot hold informational statuses \\[100\\]"),
        ({"retry_on": "503"}, "retry_on"),
        ({"deadline": 0}, "deadline"),
        ({"deadline": -1}, "deadline"),
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": "5"}, "deadline"),
        ({"redact_fields": "password"}, "redact_fields"),
        ({"box_attrs": [1]}, "box_attrs"),
        # Checked by name only, they failed later in python-box with a bare TypeError.
        ({"box_attrs": {"box_class": 5}}, "box_attrs option box_class has a value"),
        ({"box_attrs": {"box_recast": 5}}, "box_attrs option box_recast"),
        ({"box_attrs": {"box_recast": {"id": 5}}}, "box_attrs option box_recast"),
        # python-box compiles it: re.error is no ValueError, and got out bare.
        ({"box_attrs": {"box_dots_exclude": "["}}, "box_attrs option box_dots_exclude"),
        ({"retry_on": [[500]]}, "retry_on must hold HTTP status codes"),
        ({"redact_fields": b"session"}, "redact_fields must be a collection"),
        ({"redact_fields": [b"session"]}, "redact_fields must hold key names"),
        ({"box": "false"}, "box must be True or False"),
        ({"conv_json": "no"}, "conv_json must be True or False"),
        ({"use_base": "no"}, "use_base must be True or False"),
        ({"follow_redirects": "no"}, "follow_redirects must be True or False"),
        ({"follow_redirects": None}, "follow_redirects must be True or False"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "5"}, "timeout must be a positive number"),
        ({"timeout": httpx.Timeout(5, pool=-1)}, "timeout's pool"),
        ({"auth": 5}, "auth must be .* got a int"),
        ({"auth": ("user",)}, "auth must be .* got a tuple of 1 items"),
        ({"auth": ("user", "password", "extra")}, "got a tuple of 3 items"),
        ({"auth": ("user", 5)}, r"auth must be a \(username, password\) tuple of strings"),
        # requests' pairs: httpx failed while sending with a bare RuntimeError.
        ({"data": [("password", "S3CRET")]}, "data must be a mapping of form fields.* list"),
        ({"data": 5}, "data must be a mapping of form fields.* int"),
        # A sync stream: httpx's AsyncClient failed while sending with a bare RuntimeError.
        ({"content": iter([b"a"])}, "content must be bytes, a str or an async iterable.* list_"),
        ({"content": [b"a", b"b"]}, "content must be bytes, a str or an async iterable.* list"),
        ({"content": 5}, "content must be bytes.* int"),
        # A bytes name went out as b%27api_key%27, which no redaction knows.
        ({"params": {b"api_key": "k"}}, "a params name must be a str; got a bytes"),
        ({"params": [(b"token", "k")]}, "a params name must be a str; got a bytes"),
        # Any other iterable went out as its repr (ids=range%281%2C+4%29).
        ({"params": {"ids": range(1, 4)}}, r"params\['ids'\] .* got a range \(make it a list\)"),
        ({"params": {"f": {"a": 1}.keys()}}, r"got a dict_keys \(make it a list\)"),
        ({"params": {"ids": (i for i in range(2))}}, "got a generator"),
        ({"params": [("ids", range(2))]}, "got a range"),
        ({"data": {"ids": range(2)}}, r"data\['ids'\] .* got a range"),
    ],
)
def test_bad_options_are_typed_errors_naming_the_problem(
    kwargs: dict[str, object], needle: str
) -> None:
    with pytest.raises(UnexpectedValueError, match=needle):
        resolve(DEFAULTS, kwargs)


async def _chunks() -> AsyncIterator[bytes]:
    yield b"body"


def test_request_arguments_are_checked_by_kind_not_by_truth() -> None:
    # What httpx takes passes through untouched...
    for kwargs in (
        {"auth": ("user", "password"), "timeout": 5, "follow_redirects": False},
        {"auth": httpx.BasicAuth("user", "password"), "timeout": httpx.Timeout(5, pool=None)},
        {"auth": lambda request: request, "timeout": None},
        {"auth": httpx.USE_CLIENT_DEFAULT, "timeout": httpx.USE_CLIENT_DEFAULT},
        # Form fields and a streamed body (httpx takes both; a form body as text is
        # sent as content=, below).
        {"data": {"tag": ["a", "b"]}},
        {"data": _chunks()},
        # A raw body: bytes-like, text, or streamed from an async iterable.
        {"content": b"body", "timeout": 5},
        {"content": "body"},
        {"content": bytearray(b"body")},
        {"content": None},
        {"content": _chunks()},
    ):
        assert resolve(DEFAULTS, kwargs)[1] == kwargs
    # ... but "false" is no switch: bool() would take it as True.
    with pytest.raises(UnexpectedValueError, match="follow_redirects"):
        resolve(DEFAULTS, {"follow_redirects": "false"})


@pytest.mark.parametrize("body", [b"a=1", '{"a": 1}'])
def test_a_raw_data_body_is_sent_as_content(body: str | bytes) -> None:
    # requests (and RESTfly) took data=text; httpx sends it as content= too, but with a
    # DeprecationWarning pointing at trestfly's line (an error under -W error).
    assert resolve(DEFAULTS, {"data": body})[1] == {"content": body}
    # Beside files= it would drop them: a multipart form's fields are a mapping.
    with pytest.raises(UnexpectedValueError, match="cannot go with files="):
        resolve(DEFAULTS, {"data": body, "files": {"f": b"x"}})


# ------------------------------------------------------------------ call arguments


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ({"limit": 10, "offset": None}, {"limit": 10}),
        ([("limit", 10), ("offset", None)], [("limit", 10)]),
        ({"tag": ["a", None, "b"]}, {"tag": ["a", "b"]}),
        # A list of None alone names no value: left out, as requests does (kept empty,
        # it replaced the path's own `?tag=...`).
        ({"tag": [None], "a": 1}, {"a": 1}),
        ([("tag", [None]), ("a", 1)], [("a", 1)]),
    ],
)
def test_none_fields_of_params_and_data_are_left_out(given: object, sent: object) -> None:
    # requests' (and RESTfly's) reading; httpx sent ?offset= and an empty form field.
    kwargs = drop_none_fields({"params": given, "data": given, "json": {"a": None}})
    assert kwargs == {"params": sent, "data": sent, "json": {"a": None}}


def test_params_without_none_fields_are_kept_as_given() -> None:
    params = {"limit": 10}
    query = httpx.QueryParams("a=")
    assert drop_none_fields({"params": params})["params"] is params
    assert drop_none_fields({"params": query})["params"] is query
    assert drop_none_fields({"params": "offset="})["params"] == "offset="


@pytest.mark.parametrize(
    "bodies",
    [
        {"json": {}, "data": {"a": "1"}},
        {"json": {}, "content": b"x"},
        {"json": {}, "files": {"f": b"x"}},
        {"content": b"x", "data": {"a": "1"}},
    ],
)
def test_two_bodies_are_refused(bodies: dict[str, object]) -> None:
    # httpx sends one and drops the other silently.
    with pytest.raises(UnexpectedValueError, match="one body"):
        resolve(DEFAULTS, bodies)


def test_form_fields_beside_files_are_one_body() -> None:
    _, request = resolve(DEFAULTS, {"data": {"a": "1"}, "files": {"f": b"x"}, "json": None})
    assert set(request) == {"data", "files", "json"}


@pytest.mark.parametrize(
    ("method", "problem"),
    [
        (None, "must be a string"),
        ("G ET", "no HTTP method"),
        ("get ", "no HTTP method"),
        ("", "no HTTP"),
    ],
)
def test_a_method_must_be_a_method_name(method: object, problem: str) -> None:
    with pytest.raises(UnexpectedValueError, match=problem):
        checked_method(method)


def test_a_method_is_upper_cased() -> None:
    assert checked_method("propfind") == "PROPFIND"


@pytest.mark.parametrize("flag", ["false", 0, None, "yes"])
def test_box_flags_must_be_booleans(flag: object) -> None:
    # python-box reads "false" as true: every boxed response was frozen.
    with pytest.raises(UnexpectedValueError, match="frozen_box"):
        resolve(DEFAULTS, {"box_attrs": {"frozen_box": flag}})


@pytest.mark.parametrize("value", [b"X", 5, object()])
def test_redact_value_must_be_text(value: object) -> None:
    with pytest.raises(UnexpectedValueError, match="redact_value must be a string"):
        resolve(DEFAULTS, {"redact_value": value})


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"params": {"since": b"2024"}}, r"params\['since'\] .* got a bytes \(decode bytes"),
        ({"params": {"filter": {"api_key": "S3CRET"}}}, r"params\['filter'\] .* got a dict"),
        ({"params": [("ids", [1, {2}])]}, r"params\['ids'\] .* got a list"),
        ({"params": [("ids", (1, 2))]}, r"params\['ids'\] .*one value per pair"),
        ({"data": {"since": b"2024"}, "files": {}}, r"data\['since'\] .* got a bytes"),
        ({"params": {"ids": [[1, 2]]}}, r"params\['ids'\] .* got a list"),
        ({"data": {"blob": b"abc"}}, r"data\['blob'\] .* got a bytes"),
        ({"data": {"meta": {"a": 1}}, "files": {"f": b"x"}}, r"data\['meta'\] .* got a dict"),
    ],
)
def test_query_and_form_values_httpx_would_send_as_a_repr_are_refused(
    kwargs: dict[str, object], problem: str
) -> None:
    # bytes went out as ?since=b%272024%27, a dict as its repr (a key inside it too,
    # logged and quoted in errors: the outer name is no credential's).
    with pytest.raises(UnexpectedValueError, match=problem) as refused:
        resolve(DEFAULTS, kwargs)
    assert "S3CRET" not in str(refused.value)


@pytest.mark.parametrize(
    ("pairs", "shape"),
    [
        ([("a", "1", "S3CRET")], "item 0 is a tuple of 3"),
        ([("a", "1"), ["b"]], "item 1 is a list of 1"),
        (["ab"], "item 0 is a str"),
        ((("a", "1"), 5), "item 1 is an int"),
    ],
)
def test_params_as_pairs_must_be_pairs(pairs: object, shape: str) -> None:
    # httpx read the first two items of each: ("a", "1", "2") sent a=1 and dropped the
    # rest without a word, and "ab" sent a=b.
    with pytest.raises(UnexpectedValueError, match=f"must hold \\(name, value\\) pairs: {shape}"):
        resolve(DEFAULTS, {"params": pairs})


def test_query_and_form_values_httpx_sends_as_text_pass() -> None:
    import datetime
    import uuid

    resolve(DEFAULTS, {"params": {"day": datetime.date(2026, 1, 2), "id": uuid.uuid4()}})
    resolve(DEFAULTS, {"params": {"ids": [1, 2.5, True, None, "x"]}})
    resolve(DEFAULTS, {"params": httpx.QueryParams({"a": "1"})})
    resolve(DEFAULTS, {"params": "a=1&b=2"})
    resolve(DEFAULTS, {"data": {"raw": b"bytes"}, "files": {"f": b"x"}})  # multipart: a value


@pytest.mark.parametrize(
    ("extensions", "problem"),
    [
        ({"timeout": {"read": -1}}, "timeout's read must be a positive number"),
        ({"timeout": 5}, r"extensions\['timeout'\] must map connect, read, write and pool"),
        ({"timeout": {"reed": 5}}, r"extensions\['timeout'\] must map"),
        ({"trace": "not callable"}, r"extensions\['trace'\] must be a callable"),
    ],
)
def test_extensions_httpcore_fails_on_while_sending_are_refused(
    extensions: object, problem: str
) -> None:
    # They failed inside the transport or Trio, bare: "'seconds' must be non-negative",
    # an AttributeError in httpcore's pool, a TypeError in its trace.
    with pytest.raises(UnexpectedValueError, match=problem):
        resolve(DEFAULTS, {"extensions": extensions})
    resolve(DEFAULTS, {"extensions": {"timeout": httpx.Timeout(5).as_dict(), "sni_hostname": "x"}})


def test_the_typed_constructor_keywords_are_the_constructors() -> None:
    # SessionOptions is what an SDK constructor passing them on is checked against: a
    # keyword added to TrioAPISession.__init__ and not to it would be refused by type
    # checkers though the session takes it.
    parameters = inspect.signature(TrioAPISession.__init__).parameters.values()
    # All but url, which SDK constructors take as their own parameter (see its doc).
    keywords = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY} - {"url"}
    assert SessionOptions.__optional_keys__ == keywords
    assert SessionOptions.__required_keys__ == frozenset()
    constructor = typing.get_type_hints(TrioAPISession.__init__)
    options = typing.get_type_hints(SessionOptions)
    assert {name: constructor[name] for name in keywords} == options
