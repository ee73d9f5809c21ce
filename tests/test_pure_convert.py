"""JSON detection and conversion of responses."""

import httpx
import pytest
from box import Box, BoxError, BoxList

from trestfly._convert import convert_response, is_json_content_type
from trestfly.errors import ResponseDecodeError


def response(body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.Response(
        200, content=body, headers=headers, request=httpx.Request("GET", "http://h/x")
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/vnd.github+json", True),
        ("APPLICATION/HAL+JSON", True),
        ("text/plain", False),
        ("application/jsonp", False),
        ("+json", False),
        (None, False),
        ("", False),
    ],
)
def test_json_content_type(value: str | None, expected: bool) -> None:
    assert is_json_content_type(value) is expected


def convert(resp: httpx.Response, *, box: bool = False, conv_json: bool = False) -> object:
    return convert_response(resp, box=box, box_attrs={}, conv_json=conv_json)


def test_box_and_conv_json() -> None:
    obj = convert(response(b'{"a": {"b": 1}}'), box=True)
    assert isinstance(obj, Box) and obj.a.b == 1
    lst = convert(response(b'[{"a": 1}]'), box=True)
    assert isinstance(lst, BoxList) and lst[0].a == 1
    plain = convert(response(b'{"a": 1}'), conv_json=True)
    assert type(plain) is dict and plain == {"a": 1}
    both = convert(response(b'{"a": 1}'), box=True, conv_json=True)
    assert isinstance(both, Box)  # box wins


def test_scalars_empty_bodies_and_non_json() -> None:
    assert convert(response(b"42"), box=True) == 42
    assert convert(response(b'"s"'), conv_json=True) == "s"
    assert convert(response(b""), box=True) is None
    assert convert(response(b"  \n"), conv_json=True) is None
    plain = response(b"hello", "text/plain")
    assert convert(plain, box=True) is plain
    raw = response(b'{"a": 1}')
    assert convert(raw) is raw  # neither option: the Response itself


def test_box_attrs_are_applied() -> None:
    resp = response(b'{"a": 1}')
    obj = convert_response(resp, box=True, box_attrs={"frozen_box": True}, conv_json=False)
    with pytest.raises(BoxError, match="frozen"):
        obj.a = 2


def test_a_document_box_refuses_is_a_decode_error_with_the_response() -> None:
    # box_dots=True and a key with dots: a bare BoxKeyError, the response lost.
    resp = response(b'{"10.0.0.1": {"up": true}}')
    with pytest.raises(ResponseDecodeError, match="does not make a Box") as info:
        convert_response(resp, box=True, box_attrs={"box_dots": True}, conv_json=False)
    assert info.value.response is resp
    assert convert_response(resp, box=False, box_attrs={}, conv_json=True) == {
        "10.0.0.1": {"up": True}
    }


def test_a_type_error_from_python_box_is_a_decode_error_with_the_response() -> None:
    # box_recast={"id": int} meeting an object: python-box's bare TypeError escaped.
    resp = response(b'{"id": {"nested": 1}}')
    with pytest.raises(ResponseDecodeError, match="TypeError") as info:
        convert_response(resp, box=True, box_attrs={"box_recast": {"id": int}}, conv_json=False)
    assert info.value.response is resp


def test_json_nested_too_deep_is_a_decode_error() -> None:
    depth = 100_000  # past the interpreter's recursion limit
    with pytest.raises(ResponseDecodeError):
        convert(response(b"[" * depth + b"]" * depth), conv_json=True)


def test_broken_json_names_url_status_and_body() -> None:
    with pytest.raises(ResponseDecodeError) as info:
        convert(response(b"<html>oops</html>"), conv_json=True)
    message = str(info.value)
    assert "http://h/x" in message and "200" in message and "<html>oops" in message


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252"])
def test_json_in_a_declared_non_unicode_charset_is_decoded_with_it(charset: str) -> None:
    # Read as UTF-8 whatever the header said: a ResponseDecodeError for "José".
    response = httpx.Response(
        200,
        content='{"name": "José"}'.encode(charset),
        headers={"content-type": f"application/json; charset={charset}"},
        request=httpx.Request("GET", "http://api.test/users/1"),
    )
    assert convert_response(response, box=False, box_attrs={}, conv_json=True) == {"name": "José"}


@pytest.mark.parametrize(
    "charset", ["utf-8", "us-ascii", "no-such-charset", "base64", "zlib", None]
)
def test_json_declared_unicode_ascii_or_unknown_is_read_as_utf8(charset: str | None) -> None:
    # base64 and zlib are codecs but no text encodings: bytes.decode() raised a bare
    # LookupError for a 200 whose server named one.
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    response = httpx.Response(
        200,
        content='{"name": "José"}'.encode(),
        headers={"content-type": content_type},
        request=httpx.Request("GET", "http://api.test/users/1"),
    )
    assert convert_response(response, box=False, box_attrs={}, conv_json=True) == {"name": "José"}
