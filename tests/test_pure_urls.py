"""URL joining: exactly one slash at each seam (RESTfly 1.x doubled them)."""

import pytest

from trestfly._urls import build_url, is_absolute, join_path
from trestfly.errors import UnexpectedValueError


@pytest.mark.parametrize(
    ("url", "base", "path", "expected"),
    [
        ("http://h", "", "a", "http://h/a"),
        ("http://h/", "", "/a", "http://h/a"),  # v1 regression: get('/a') sent //a
        ("http://h//", "//v1//", "//a", "http://h/v1/a"),
        ("http://h", "v1", "a/", "http://h/v1/a/"),  # trailing slash kept
        ("http://h", "v1", "a//", "http://h/v1/a/"),  # ... as one slash
        ("http://h", "/v1/", "", "http://h/v1"),
        ("http://h/", "", "/", "http://h/"),
        ("http://h:8080/root", "v2", "x/y", "http://h:8080/root/v2/x/y"),
    ],
)
def test_build_url_joins_with_one_slash(url: str, base: str, path: str, expected: str) -> None:
    assert build_url(url, base, path) == expected


def test_use_base_false_drops_base_path() -> None:
    assert build_url("http://h/", "/v1/", "/login", use_base=False) == "http://h/login"


@pytest.mark.parametrize("path", ["http://other/x", "HTTPS://other/x//", "https://o"])
def test_absolute_path_is_used_as_is(path: str) -> None:
    assert is_absolute(path)
    assert build_url("http://h", "v1", path) == path


def test_relative_path_without_url_is_a_typed_error() -> None:
    with pytest.raises(UnexpectedValueError, match=r"'users'.*no url"):
        build_url(None, "", "users")


def test_join_path_skips_empty_parts() -> None:
    assert join_path("", "a", "", "b") == "a/b"
    assert join_path("/users", "1") == "/users/1"
    assert join_path() == ""
