"""Tests of trestfly.utils: the RESTfly helper port."""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Optional, Union

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trestfly import utils
from trestfly.errors import RequiredParameterError, UnexpectedValueError
from trestfly.utils import (
    PATTERNS,
    check,
    dict_clean,
    dict_flatten,
    dict_merge,
    force_case,
    redact_values,
    trunc,
    url_validator,
)

UUID = "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(st.sampled_from(["a", "b", "secret", "c"]), children, max_size=4)
    ),
    max_leaves=15,
)
nested_dicts = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.recursive(
        st.integers() | st.lists(st.integers(), max_size=2),
        lambda children: st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


def test_all_exports_the_public_helpers() -> None:
    import trestfly.utils as utils

    assert sorted(utils.__all__) == sorted(
        [
            "PATTERNS",
            "check",
            "dict_clean",
            "dict_flatten",
            "dict_merge",
            "force_case",
            "redact_values",
            "trunc",
            "url_validator",
        ]
    )


# --- dict_merge --------------------------------------------------------------------------


def test_dict_merge_merges_nested_dicts_and_replaces_other_values() -> None:
    master = {"one": 1, "two": 2, "three": {"four": 4, "five": {"six": 6}}}
    update = {"a": "a", "two": "deux", "three": {"b": "b", "five": {"seven": 7}}}
    assert dict_merge(master, update) == {
        "one": 1,
        "two": "deux",
        "a": "a",
        "three": {"four": 4, "b": "b", "five": {"six": 6, "seven": 7}},
    }


def test_dict_merge_applies_updates_in_order() -> None:
    assert dict_merge({"a": 1}, {"a": 2, "b": 1}, {"a": 3}) == {"a": 3, "b": 1}


def test_dict_merge_replaces_when_only_one_side_is_a_dict() -> None:
    assert dict_merge({"a": {"x": 1}}, {"a": 5}) == {"a": 5}
    assert dict_merge({"a": 5}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert dict_merge({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # lists are replaced


def test_dict_merge_does_not_mutate_inputs_and_shares_no_dict() -> None:
    master: dict[str, Any] = {"a": {"b": {"c": 1}}, "keep": [1]}
    update = {"a": {"b": {"d": 2}}, "new": {"e": 3}}
    master_before, update_before = copy.deepcopy(master), copy.deepcopy(update)
    merged = dict_merge(master, update)
    assert master == master_before
    assert update == update_before
    assert merged["a"] is not master["a"]
    assert merged["a"]["b"] is not master["a"]["b"]
    assert merged["new"] is not update["new"]
    merged["a"]["b"]["z"] = 9
    merged["new"]["z"] = 9
    assert master == master_before
    assert update == update_before


def test_dict_merge_without_updates_returns_a_new_equal_dict() -> None:
    master = {"a": {"b": 1}}
    merged = dict_merge(master)
    assert merged == master
    assert merged is not master
    assert merged["a"] is not master["a"]


def test_dict_merge_accepts_any_mapping_and_returns_plain_dicts() -> None:
    merged = dict_merge(MappingProxyType({"a": MappingProxyType({"b": 1})}), {"a": {"c": 2}})
    assert merged == {"a": {"b": 1, "c": 2}}
    assert type(merged) is dict
    assert type(merged["a"]) is dict


@given(nested_dicts, nested_dicts, nested_dicts)
def test_dict_merge_never_mutates_and_later_leaves_win(
    master: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> None:
    snapshots = [copy.deepcopy(d) for d in (master, first, second)]
    merged = dict_merge(master, first, second)
    assert [master, first, second] == snapshots
    assert set(merged) == set(master) | set(first) | set(second)
    for key, value in second.items():
        if not isinstance(value, dict):
            assert merged[key] == value
    flat = dict_flatten(merged)
    for key, value in dict_flatten(second).items():
        assert flat[key] == value


# --- dict_flatten ------------------------------------------------------------------------


def test_dict_flatten_joins_nested_keys() -> None:
    assert dict_flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}}) == {"a": 1, "b.c": 2, "b.d.e": 3}


def test_dict_flatten_custom_separator_and_parent_key() -> None:
    assert dict_flatten({"a": {"b": 1}}, sep="__") == {"a__b": 1}
    assert dict_flatten({"a": {"b": 1}}, parent_key="root") == {"root.a.b": 1}


@pytest.mark.parametrize("bad", [{"sep": None}, {"sep": 1}, {"parent_key": 5}])
def test_dict_flatten_names_a_separator_or_parent_key_that_is_not_a_string(
    bad: dict[str, Any],
) -> None:
    # Joined as text: sep=None made {"a": {"b": 1}} into {"aNoneb": 1}.
    with pytest.raises(UnexpectedValueError, match=r"dict_flatten: .* must be a string"):
        dict_flatten({"a": {"b": 1}}, **bad)


def test_dict_flatten_takes_no_parent_key_as_restfly_does() -> None:
    assert dict_flatten({"a": {"b": 1}}, parent_key=None) == {"a.b": 1}  # type: ignore[arg-type]


def test_dict_flatten_drops_empty_nested_and_stringifies_keys() -> None:
    assert dict_flatten({"a": {}, "b": 1}) == {"b": 1}
    assert dict_flatten({1: {2: "x"}}) == {"1.2": "x"}


def test_dict_flatten_keeps_lists_as_values_and_does_not_mutate() -> None:
    data = {"a": {"b": [1, {"c": 2}]}}
    before = copy.deepcopy(data)
    assert dict_flatten(data) == {"a.b": [1, {"c": 2}]}
    assert data == before


# --- dict_clean --------------------------------------------------------------------------


def test_dict_clean_removes_none_recursively() -> None:
    data = {"a": 1, "b": {"c": 2, "d": None}, "e": None}
    assert dict_clean(data) == {"a": 1, "b": {"c": 2}}


def test_dict_clean_drops_dicts_left_empty() -> None:
    assert dict_clean({"a": {"b": None}, "c": {"d": {"e": None}}, "f": 1}) == {"f": 1}


def test_dict_clean_cleans_dicts_inside_lists_and_keeps_other_items() -> None:
    data = {"items": [{"a": None, "b": 1}, {"c": None}, None, 0, "x", [None]]}
    assert dict_clean(data) == {"items": [{"b": 1}, None, 0, "x", [None]]}


def test_dict_clean_keeps_falsy_values_that_are_not_none() -> None:
    data = {"zero": 0, "empty": "", "false": False, "list": []}
    assert dict_clean(data) == data


def test_dict_clean_does_not_mutate() -> None:
    data = {"a": None, "b": {"c": None, "d": 1}, "l": [{"x": None, "y": 2}]}
    before = copy.deepcopy(data)
    dict_clean(data)
    assert data == before


# --- force_case --------------------------------------------------------------------------


def test_force_case_on_strings() -> None:
    assert force_case("This is a TEST", "lower") == "this is a test"
    assert force_case("This is a TEST", "upper") == "THIS IS A TEST"


def test_force_case_keeps_non_string_list_items() -> None:
    items = ["a", "List", 1, None, ("t",), 2.5]
    assert force_case(items, "upper") == ["A", "LIST", 1, None, ("t",), 2.5]
    assert force_case(items, "lower") == ["a", "list", 1, None, ("t",), 2.5]
    assert items == ["a", "List", 1, None, ("t",), 2.5]  # a new list is returned


@pytest.mark.parametrize("obj", [1, None, ("A",), {"A": "B"}, b"AB"])
def test_force_case_returns_other_objects_unchanged(obj: Any) -> None:
    assert force_case(obj, "lower") is obj


@pytest.mark.parametrize("bad_case", ["title", "LOWER", "", None])
def test_force_case_rejects_unknown_case(bad_case: Any) -> None:
    with pytest.raises(UnexpectedValueError, match="case has value") as info:
        force_case("abc", bad_case)
    assert repr(bad_case) in str(info.value)
    assert "'lower' or 'upper'" in str(info.value)
    with pytest.raises(UnexpectedValueError):
        force_case(5, bad_case)  # the case is checked whatever the object


# --- trunc -------------------------------------------------------------------------------


def test_trunc_cuts_only_longer_text() -> None:
    assert trunc("this is a test", 6) == "thi..."
    assert trunc("abcdef", 6) == "abcdef"  # exactly the limit: unchanged
    assert trunc("abc", 6) == "abc"
    assert trunc("", 0, suffix=None) == ""


def test_trunc_custom_and_missing_suffix() -> None:
    assert trunc("this is a test", 6, suffix="->") == "this->"
    assert trunc("this is a test", 6, suffix=None) == "this i"
    assert trunc("this is a test", 6, suffix="") == "this i"


def test_trunc_limit_equal_to_suffix_length_gives_the_suffix() -> None:
    assert trunc("abcdef", 3) == "..."


@pytest.mark.parametrize(("text", "limit"), [("abcdef", 2), ("ab", 2), ("abc", -1)])
def test_trunc_rejects_limit_shorter_than_suffix(text: str, limit: int) -> None:
    with pytest.raises(UnexpectedValueError) as info:
        trunc(text, limit)
    assert str(info.value) == (
        f"limit has value {limit}, expected at least 3 (the length of suffix '...')"
    )


def test_trunc_rejects_negative_limit_without_suffix() -> None:
    with pytest.raises(UnexpectedValueError, match="limit has value -1"):
        trunc("abc", -1, suffix=None)


@given(st.text(max_size=40), st.integers(min_value=0, max_value=50), st.text(max_size=4))
def test_trunc_never_exceeds_limit(text: str, limit: int, suffix: str) -> None:
    if limit < len(suffix):
        with pytest.raises(UnexpectedValueError):
            trunc(text, limit, suffix)
        return
    result = trunc(text, limit, suffix)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
    else:
        assert len(result) == limit
        assert result == text[: limit - len(suffix)] + suffix


# --- redact_values -----------------------------------------------------------------------


def test_the_dict_helpers_name_a_mapping_that_holds_itself() -> None:
    # Each raised a bare RecursionError (redact_values writes "<cycle>": it serves logs).
    looped: dict[str, Any] = {"a": 1}
    looped["self"] = looped
    for call in (
        lambda: utils.dict_clean(looped),
        lambda: utils.dict_flatten(looped),
        lambda: utils.dict_merge(looped, {"b": 2}),
        lambda: utils.dict_merge({"b": 2}, looped),
    ):
        with pytest.raises(UnexpectedValueError, match=r"holds itself \(a cycle\)") as caught:
            call()
        assert caught.value.__context__ is None


def test_dict_flatten_refuses_two_keys_that_flatten_to_one() -> None:
    # One of the values was dropped silently.
    with pytest.raises(UnexpectedValueError, match=r"two keys flatten to 'a\.b'"):
        utils.dict_flatten({"a.b": 1, "a": {"b": 2}})
    assert utils.dict_flatten({"a.b": 1, "a": {"b": 2}}, sep="/") == {"a.b": 1, "a/b": 2}


def test_key_and_part_names_that_are_not_strings_are_named() -> None:
    # A list in the list failed in frozenset() / getattr with a bare TypeError.
    with pytest.raises(UnexpectedValueError, match="holding an unhashable"):
        utils.redact_values({"a": 1}, [["a"]])  # type: ignore[list-item]
    assert utils.redact_values({1: "s"}, [1]) == {1: "REDACTED"}  # type: ignore[list-item]
    with pytest.raises(UnexpectedValueError, match="validate must hold part names"):
        utils.url_validator("https://h", [["scheme"]])  # type: ignore[list-item]


def test_check_never_quotes_a_value_under_a_credential_name() -> None:
    with pytest.raises(UnexpectedValueError, match="api_key has value REDACTED") as caught:
        utils.check("api_key", "sk_live_S3CRET", str, regex=r"^pk_")
    assert "S3CRET" not in str(caught.value)
    with pytest.raises(TypeError) as wrong_type:
        utils.check("password", "S3CRET", int)
    assert "S3CRET" not in str(wrong_type.value)
    with pytest.raises(UnexpectedValueError, match="page has value 'abc'"):
        utils.check("page", "abc", str, regex=r"^x")  # other names are quoted


def test_redact_values_at_any_depth_in_dicts_lists_and_tuples() -> None:
    data = {
        "user": "bob",
        "password": "hunter2",
        "nested": {"token": "t", "ok": 1},
        "items": [{"password": "p"}, ("x", {"token": "u"}), [[{"token": "v"}]]],
    }
    assert redact_values(data, ["password", "token"]) == {
        "user": "bob",
        "password": "REDACTED",
        "nested": {"token": "REDACTED", "ok": 1},
        "items": [
            {"password": "REDACTED"},
            ("x", {"token": "REDACTED"}),
            [[{"token": "REDACTED"}]],
        ],
    }


def test_redact_values_redacts_a_dict_value_whole_and_uses_custom_value() -> None:
    data = {"auth": {"user": "u", "key": "k"}, "n": [{"auth": None}]}
    assert redact_values(data, {"auth"}, value="***") == {"auth": "***", "n": [{"auth": "***"}]}


def test_redact_values_keeps_container_types() -> None:
    result = redact_values(({"k": 1},), ("k",))
    assert result == ({"k": "REDACTED"},)
    assert type(result) is tuple
    proxied = redact_values(MappingProxyType({"k": 1, "j": 2}), ["k"])
    assert proxied == {"k": "REDACTED", "j": 2}
    assert type(proxied) is dict


def test_redact_values_hides_a_header_of_an_httpx_headers_in_any_case() -> None:
    # httpx.Headers gives its names lower-cased: "Authorization" was left in clear.
    headers = httpx.Headers({"Authorization": "Bearer S3CRET", "Accept": "*/*"})
    for name in ("Authorization", "authorization", "AUTHORIZATION"):
        assert redact_values(headers, [name]) == {"authorization": "REDACTED", "accept": "*/*"}
    # In a plain dict, keys still match exactly (as in RESTfly).
    assert redact_values({"Token": "t", "token": "u"}, ["token"]) == {
        "Token": "t",
        "token": "REDACTED",
    }


def test_redact_values_refuses_bytes_keys_and_names_a_document_too_deep() -> None:
    # b"token" was read as the integers 116, 111, ...: the key stayed in clear and an
    # integer key was redacted instead.
    with pytest.raises(UnexpectedValueError, match="got bytes"):
        redact_values({b"token": "S3CRET", 116: "t"}, b"token")  # type: ignore[arg-type]
    deep: Any = {"token": "S3CRET"}
    for _ in range(5000):
        deep = {"a": deep}
    # A bare RecursionError before (json.dumps sends 900 levels).
    with pytest.raises(UnexpectedValueError, match="nests too deep"):
        redact_values(deep, ["token"])


@pytest.mark.parametrize("name", ["user[password]", "filter[api_key]"])
def test_check_never_quotes_a_value_under_a_bracketed_credential_name(name: str) -> None:
    # Cut at the first "[" for check's own item suffix, the name read "user": quoted.
    with pytest.raises(UnexpectedValueError) as caught:
        utils.check(name, "hunter2 S3CRET", str, regex=r"^\S+$")
    assert "S3CRET" not in str(caught.value)
    with pytest.raises(TypeError) as wrong_type:
        utils.check(name, "S3CRET", int)
    assert "S3CRET" not in str(wrong_type.value)
    with pytest.raises(UnexpectedValueError, match="has value 'x y'"):
        utils.check("ids", ["x y"], list, items_type=str, regex=r"^\S+$")  # still quoted


def test_redact_values_does_not_mutate_input() -> None:
    data = {"a": {"secret": 1}, "l": [{"secret": 2}], "t": ({"secret": 3},)}
    before = copy.deepcopy(data)
    result = redact_values(data, ["secret"])
    assert data == before
    assert result["a"] is not data["a"]
    assert result["l"] is not data["l"]


def test_redact_values_single_string_is_one_key() -> None:
    assert redact_values({"token": 1, "t": 2, "o": 3}, "token") == {
        "token": "REDACTED",
        "t": 2,
        "o": 3,
    }


def test_redact_values_accepts_any_iterable_of_keys() -> None:
    assert redact_values({"a": 1, "b": 2}, (k for k in ["a"])) == {"a": "REDACTED", "b": 2}


def test_redact_values_without_keys_redacts_nothing_as_in_restfly() -> None:
    assert redact_values({"a": {"b": 1}}) == {"a": {"b": 1}}
    assert redact_values({"a": 1}, None) == {"a": 1}
    with pytest.raises(UnexpectedValueError, match="redact_values: keys must be key names"):
        redact_values({"a": 1}, 5)  # type: ignore[arg-type]


def test_redact_values_matches_keys_exactly() -> None:
    assert redact_values({"Token": 1}, ["token"]) == {"Token": 1}


@pytest.mark.parametrize("obj", [None, "password", 5, b"x"])
def test_redact_values_passes_other_objects_through(obj: Any) -> None:
    assert redact_values(obj, ["password"]) is obj


def test_redact_values_survives_circular_structures() -> None:
    loop: list[Any] = [{"token": "t"}]
    loop.append(loop)
    assert redact_values(loop, ["token"]) == [{"token": "REDACTED"}, "<cycle>"]
    shared = {"token": "x"}
    assert redact_values([shared, shared], ["token"]) == [{"token": "REDACTED"}] * 2


@given(json_like)
def test_redact_values_never_mutates_and_leaves_no_secret(obj: Any) -> None:
    before = copy.deepcopy(obj)
    result = redact_values(obj, ["secret"], value="X")
    assert obj == before

    def secrets(value: Any) -> list[Any]:
        if isinstance(value, dict):
            own = [v for k, v in value.items() if k == "secret"]
            return own + [s for v in value.values() for s in secrets(v)]
        if isinstance(value, list | tuple):
            return [s for v in value for s in secrets(v)]
        return []

    assert all(found == "X" for found in secrets(result))


# --- url_validator -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com", True),
        ("http://localhost:8080/x", True),
        ("example.com", False),
        ("https://", False),
        ("", False),
        ("http://[::1", False),  # urlparse refuses it: False, not ValueError
    ],
)
def test_url_validator_default_parts(url: str, expected: bool) -> None:
    assert url_validator(url) is expected


def test_url_validator_named_parts() -> None:
    assert url_validator("https://httpbin.org/404", validate=["scheme", "netloc", "path"])
    assert not url_validator("https://httpbin.org", validate=["scheme", "netloc", "path"])
    assert url_validator("https://h.org/?q=1", validate=("query",))
    assert not url_validator("https://h.org/", validate=("query",))
    assert not url_validator("https://h.org/", validate=["hostname"])  # not a part name


def test_url_validator_takes_a_single_part_name() -> None:
    assert url_validator("https://h.org/", validate="scheme") is True
    assert url_validator("https://h.org/", validate="query") is False


@pytest.mark.parametrize("empty", [None, "", [], ()])
def test_url_validator_with_no_names_checks_the_default_parts(empty: object) -> None:
    # "" was one name, which no part has: every URL failed (RESTfly's `if not validate`).
    assert url_validator("https://h.org", validate=empty) is True  # type: ignore[arg-type]
    assert url_validator("h.org", validate=empty) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: url_validator(5), "url must be a string"),  # type: ignore[arg-type]
        (lambda: url_validator("https://h.org", 5), "validate must be"),  # type: ignore[arg-type]
        (lambda: dict_merge(5), "master must be a mapping"),  # type: ignore[arg-type]
        (lambda: dict_merge({}, {}, 5), r"updates\[1\] must be a mapping"),  # type: ignore[arg-type]
        (lambda: dict_flatten([1]), "d must be a mapping"),  # type: ignore[arg-type]
        (lambda: dict_clean(None), "d must be a mapping"),  # type: ignore[arg-type]
        (lambda: trunc("abc", "x"), "limit must be an integer"),  # type: ignore[arg-type]
        (lambda: trunc("abc", True), "limit must be an integer"),
        (lambda: trunc(5, 2), "text must be a string"),  # type: ignore[arg-type]
        (lambda: trunc("abc", 5, 3), "suffix must be a string"),  # type: ignore[arg-type]
    ],
)
def test_helpers_name_an_argument_of_the_wrong_kind(call: Any, named: str) -> None:
    with pytest.raises(UnexpectedValueError, match=named):
        call()


def test_url_validator_empty_validate_means_default() -> None:
    assert url_validator("example.com", validate=[]) is False
    assert url_validator("https://example.com", validate=None) is True


# --- check: types ------------------------------------------------------------------------


def test_check_returns_value_of_expected_type() -> None:
    value = {"a": 1}
    assert check("value", value, dict) is value
    assert check("value", 5, int) == 5
    assert check("value", 5, (str, int)) == 5


def test_check_wrong_type_raises_type_error_naming_everything() -> None:
    with pytest.raises(TypeError) as info:
        check("limit", [1], int)
    assert str(info.value) == "limit is of type list, expected int"
    with pytest.raises(TypeError) as info:
        check("limit", 1.5, (int, str))
    assert str(info.value) == "limit is of type float, expected int or str"


def test_check_refuses_bool_for_int() -> None:
    with pytest.raises(TypeError, match="flag is of type bool, expected int"):
        check("flag", True, int)
    assert check("flag", True, bool) is True
    assert check("flag", False, (int, bool)) is False
    assert check("flag", True, object) is True


def test_check_softcheck_converts_strings() -> None:
    assert check("n", "5", int) == 5
    assert check("n", "1.5", float) == 1.5
    assert check("n", "1.5", (int, float)) == 1.5
    assert check("n", UUID, uuid.UUID) == uuid.UUID(UUID)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("YES", True), ("False", False), ("no", False)]
)
def test_check_softcheck_converts_boolean_words(text: str, expected: bool) -> None:
    assert check("flag", text, bool) is expected


def test_check_softcheck_failures_are_type_errors() -> None:
    with pytest.raises(TypeError) as info:
        check("n", "abc", int)
    assert str(info.value) == "n is of type str ('abc'), expected int"
    with pytest.raises(TypeError, match="flag is of type str"):
        check("flag", "maybe", bool)
    with pytest.raises(TypeError, match="is of type str"):
        check("items", "abc", list)  # never split a string into a collection
    with pytest.raises(TypeError, match="is of type int"):
        check("name", 5, str)  # only strings are converted


def test_check_without_softcheck_is_strict() -> None:
    with pytest.raises(TypeError, match="n is of type str"):
        check("n", "5", int, softcheck=False)
    with pytest.raises(TypeError):
        check("flag", "true", bool, softcheck=False)


# --- check: None, default, allow_none ----------------------------------------------------


def test_check_none_returns_default() -> None:
    assert check("v", None, int) is None
    assert check("v", None, int, default=10) == 10
    assert check("v", 3, int, default=10) == 3
    assert check("v", None, int, default="not validated") == "not validated"


def test_check_allow_none_false_raises_required_parameter_error() -> None:
    with pytest.raises(RequiredParameterError) as info:
        check("scan_id", None, int, allow_none=False)
    assert str(info.value) == "scan_id is required: got None, expected int"
    assert isinstance(info.value, ValueError)
    with pytest.raises(RequiredParameterError):
        check("scan_id", None, int, allow_none=False, default=3)  # as RESTfly


# --- check: case and choices -------------------------------------------------------------


def test_check_case_applies_to_value_choices_and_default() -> None:
    assert check("v", "Medium", str, case="lower", choices=["LOW", "MEDIUM"]) == "medium"
    assert check("v", "high", str, case="upper") == "HIGH"
    assert check("v", None, str, case="upper", default="low") == "LOW"
    assert check("v", ["a", "B"], list, case="upper") == ["A", "B"]
    assert check("v", 5, int, case="lower") == 5


def test_check_case_applies_to_a_tuple_as_to_a_list() -> None:
    # Choices apply to each item of a tuple, but a tuple was never cased: a valid tuple
    # was refused ("v has value 'A'").
    assert check("v", ("A", "B"), tuple, choices=["a", "b"], case="lower") == ("a", "b")
    assert check("v", ("a", 1), tuple, case="upper") == ("A", 1)
    assert check("v", None, tuple, case="upper", default=("low",)) == ("LOW",)


def test_check_bad_case_raises_unexpected_value_error() -> None:
    with pytest.raises(UnexpectedValueError, match="case has value 'title'"):
        check("v", "x", str, case="title")  # type: ignore[arg-type]


def test_check_choices() -> None:
    assert check("v", 2, int, choices=[1, 2]) == 2
    assert check("v", 50, int, choices=range(1, 101)) == 50
    assert check("v", "b", str, choices=(c for c in "abc")) == "b"
    with pytest.raises(UnexpectedValueError) as info:
        check("severity", "urgent", str, choices=["low", "high"])
    assert str(info.value) == "severity has value 'urgent', expected one of ['low', 'high']"


def test_check_choices_apply_to_each_item_of_a_list_or_tuple() -> None:
    assert check("v", ["a", "b"], list, choices=["a", "b", "c"]) == ["a", "b"]
    with pytest.raises(UnexpectedValueError, match="v has value 'd'"):
        check("v", ("a", "d"), tuple, choices=["a", "b"])


def test_check_empty_choices_allow_nothing() -> None:
    with pytest.raises(UnexpectedValueError, match="expected one of \\[\\]"):
        check("v", "a", str, choices=[])


def test_check_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(UnexpectedValueError) as info:
        check("v", "x" * 500, str, choices=["a"])
    assert len(str(info.value)) < 200
    assert "..." in str(info.value)


# --- check: patterns and regex -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        ("uuid", UUID, UUID[:-1]),
        ("uuid", UUID.upper(), UUID + "0"),
        ("scanner-uuid", "6f1c2a3b-4d5e-4f60-8a9b-" + "0" * 32, "6f1c2a3b-4d5e-4f60-8a9b-0c1"),
        ("email", "first.last+tag@example.co.uk", "first.last@"),
        ("hex", "deadBEEF01", "xyz"),
        ("hex", "abc", "ab[c"),  # RESTfly's [a-fA-f] range let '[' through
        ("url", "https://example.com/a/b?x=1", "not a url"),
        ("url", "example.com", "ftp://example.com"),
        ("ipv4", "192.168.0.1", "192.168.0.256"),
        ("ipv4", "10.0.0.0/8", "10.0.0.0/33"),
        ("ipv6", "fe80::1", "fe80::g"),
        ("ipv6", "::ffff:192.168.0.1", "1.2.3.4"),
    ],
)
def test_check_named_patterns(pattern: str, good: str, bad: str) -> None:
    assert check("v", good, str, pattern=pattern) == good
    with pytest.raises(UnexpectedValueError) as info:
        check("v", bad, str, pattern=pattern)
    assert str(info.value) == f"v has value {bad!r}, expected a match of pattern {pattern!r}"


def test_check_patterns_match_the_whole_string() -> None:
    with pytest.raises(UnexpectedValueError):
        check("v", UUID + "\n", str, pattern="uuid")


def test_check_unknown_pattern_raises_even_for_none() -> None:
    with pytest.raises(UnexpectedValueError) as info:
        check("v", None, str, pattern="nope")
    assert "pattern 'nope' is unknown" in str(info.value)
    assert "uuid" in str(info.value)


def test_check_pattern_applies_to_list_items_and_only_strings() -> None:
    assert check("v", ["ab", "cd"], list, pattern="hex") == ["ab", "cd"]
    with pytest.raises(UnexpectedValueError, match="v has value 'zz'"):
        check("v", ["ab", "zz"], list, pattern="hex")
    assert check("v", 5, int, pattern="hex") == 5  # as RESTfly: non-strings are not matched


def test_check_pattern_map_adds_and_overrides() -> None:
    digits = {"digits": r"\A\d+\Z", "uuid": r"\Aid-\d+\Z"}
    assert check("v", "123", str, pattern="digits", pattern_map=digits) == "123"
    with pytest.raises(UnexpectedValueError):
        check("v", "12a", str, pattern="digits", pattern_map=digits)
    assert check("v", "id-7", str, pattern="uuid", pattern_map=digits) == "id-7"
    with pytest.raises(UnexpectedValueError):
        check("v", UUID, str, pattern="uuid", pattern_map=digits)
    assert check("v", "x", str, pattern="odd", pattern_map={"odd": lambda s: len(s) % 2 == 1})
    assert "digits" not in PATTERNS  # pattern_map never changes the built-ins
    assert PATTERNS["uuid"] != digits["uuid"]


def test_check_regex_searches_strings_and_compiled_patterns() -> None:
    assert check("v", "abc123", str, regex=r"\d+") == "abc123"
    assert check("v", "ABC", str, regex=re.compile("b", re.IGNORECASE)) == "ABC"
    with pytest.raises(UnexpectedValueError) as info:
        check("v", "abc", str, regex=r"^\d+$")
    assert str(info.value) == "v has value 'abc', expected a match of pattern '^\\\\d+$'"


def test_check_pattern_and_regex_both_apply() -> None:
    with pytest.raises(UnexpectedValueError, match="pattern '0\\$'"):
        check("v", "abc1", str, pattern="hex", regex="0$")
    assert check("v", "abc0", str, pattern="hex", regex="0$") == "abc0"


# --- check: items_type -------------------------------------------------------------------


def test_check_items_type_checks_and_converts_items() -> None:
    assert check("ids", [1, "2"], list, items_type=int) == [1, 2]
    assert check("ids", (1, 2), tuple, items_type=int) == (1, 2)
    assert check("ids", {3}, set, items_type=int) == [3]  # as RESTfly: a list comes back


def test_check_items_type_error_names_the_item() -> None:
    with pytest.raises(TypeError) as info:
        check("ids", [1, True], list, items_type=int)
    assert str(info.value) == "ids[1] is of type bool, expected int"
    with pytest.raises(TypeError, match=r"ids\[0\] is of type str \('x'\), expected int"):
        check("ids", ["x"], list, items_type=int)


def test_check_items_type_needs_an_iterable() -> None:
    with pytest.raises(TypeError, match="ids is of type int, expected an iterable"):
        check("ids", 5, int, items_type=int)
    with pytest.raises(TypeError, match="ids is of type str, expected an iterable"):
        check("ids", "abc", str, items_type=str)


def test_check_items_type_uuid_applies_the_pattern_to_items() -> None:
    assert check("ids", [UUID], list, items_type="uuid") == [UUID]
    with pytest.raises(UnexpectedValueError, match="ids has value 'x'"):
        check("ids", [UUID, "x"], list, items_type="uuid")


# --- check: named expected types ---------------------------------------------------------


def test_check_uuid_types() -> None:
    assert check("id", UUID, "uuid") == UUID
    assert check("id", UUID.upper(), "uuid", case="lower") == UUID
    long_id = "6f1c2a3b-4d5e-4f60-8a9b-" + "a" * 32
    assert check("id", long_id, "scanner-uuid") == long_id
    with pytest.raises(UnexpectedValueError, match="pattern 'uuid'"):
        check("id", long_id, "uuid")
    with pytest.raises(TypeError, match="id is of type int, expected str"):
        check("id", 5, "uuid")


def test_check_datetime_from_iso_strings_instances_and_timestamps() -> None:
    expected = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert check("when", "2024-01-02T03:04:05Z", "datetime") == expected
    assert check("when", "2024-01-02T03:04:05+00:00", dt.datetime) == expected
    assert check("when", "2024-01-02", "datetime") == dt.datetime(2024, 1, 2)
    assert check("when", expected, "datetime") is expected
    assert check("when", 0, "datetime") == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert check("when", "2024-01-02", "datetime", softcheck=False) == dt.datetime(2024, 1, 2)


def test_check_datetime_refusals() -> None:
    with pytest.raises(TypeError) as info:
        check("when", "yesterday", "datetime")
    assert str(info.value) == "when is of type str ('yesterday'), expected datetime"
    with pytest.raises(TypeError, match="when is of type bool, expected datetime"):
        check("when", True, "datetime")
    with pytest.raises(TypeError, match="when is of type list"):
        check("when", [], "datetime")


def test_check_date() -> None:
    assert check("day", "2024-02-29", "date") == dt.date(2024, 2, 29)
    today = dt.date(2024, 1, 1)
    assert check("day", today, dt.date) is today
    with pytest.raises(TypeError, match="day is of type str \\('2023-02-29'\\), expected date"):
        check("day", "2023-02-29", "date")


def test_check_unknown_type_name_raises() -> None:
    with pytest.raises(UnexpectedValueError, match="expected type 'integer' is unknown"):
        check("v", 1, "integer")


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"expected_type": 5}, "expected_type 5 is not a type"),
        ({"expected_type": (int, "str")}, "expected_type .* is not a type"),
        ({"items_type": 5}, "items_type 5 is not a type"),
        ({"regex": "("}, "regex '\\(' is not a regular expression"),
        ({"regex": 5}, "regex 5 is not a regular expression"),
        ({"regex": b"a"}, "bytes pattern"),
        ({"pattern": "p", "pattern_map": {"p": "("}}, "pattern 'p' is not a regular"),
        ({"pattern": "p", "pattern_map": 5}, "pattern_map must be a mapping"),
        ({"choices": 5}, "choices must be an iterable"),
    ],
)
def test_check_names_a_bad_type_pattern_or_choices(keywords: dict[str, Any], named: str) -> None:
    arguments: dict[str, Any] = {"expected_type": list, **keywords}
    value = ["a"] if arguments["expected_type"] is list else "a"
    with pytest.raises(UnexpectedValueError, match=named):
        check("v", value, **arguments)


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"items_type": 0}, "items_type 0 is not a type"),
        ({"items_type": ()}, "items_type \\(\\) is not a type"),
        ({"items_type": ""}, "expected type '' is unknown"),
        ({"expected_type": ()}, "expected_type \\(\\) is not a type"),
    ],
)
def test_check_refuses_a_falsy_or_empty_type_as_no_type(
    keywords: dict[str, Any], named: str
) -> None:
    # A falsy items_type was silently no items_type, and an empty tuple of types made
    # every value a TypeError expecting nothing.
    arguments: dict[str, Any] = {"expected_type": list, **keywords}
    with pytest.raises(UnexpectedValueError, match=named):
        check("v", [1], **arguments)
    with pytest.raises(UnexpectedValueError, match=named):
        check("v", None, **arguments)  # even when obj is None


def test_check_takes_a_typing_union_and_names_its_parts() -> None:
    # Not a type itself, but RESTfly-era callers spell Optional[int]: it stays accepted.
    assert check("u", 5, Optional[int]) == 5  # type: ignore[arg-type]  # noqa: UP045
    with pytest.raises(TypeError, match="expected int or str"):
        check("u", 1.5, Union[int, str])  # type: ignore[arg-type]  # noqa: UP007


def test_check_rejects_misspelt_keywords() -> None:
    with pytest.raises(TypeError):
        check("v", 1, int, choice=[1])  # type: ignore[call-arg]


def test_check_names_the_parts_of_a_union_type() -> None:
    assert check("u", 5, int | str) == 5
    with pytest.raises(TypeError, match="expected int or str"):
        check("u", 1.5, int | str)
    with pytest.raises(RequiredParameterError, match="expected int or str"):
        check("u", None, int | str, allow_none=False)


# --- choices kept as containers, name refused, multi-value mappings ------------------


class _NotToCopy:
    """Choices that answer ``in`` but must never be iterated (a huge or lazy set)."""

    def __contains__(self, value: object) -> bool:
        return value == "ok"

    def __iter__(self) -> Any:
        raise AssertionError("check() copied the choices")


def test_check_asks_a_range_or_container_of_choices_without_copying_it() -> None:
    # list(range(0, 2**40)) was a MemoryError.
    assert check("offset", 5, int, choices=range(0, 2**40)) == 5
    assert check("offset", 5, int, choices=range(0, 2**40), case="lower") == 5
    assert check("ids", [1, 2], list, choices=range(0, 2**40)) == [1, 2]
    with pytest.raises(UnexpectedValueError, match=r"expected one of range\(0, 1099511627776\)"):
        check("offset", 2**40, int, choices=range(0, 2**40))
    assert check("v", "ok", str, choices=_NotToCopy()) == "ok"  # type: ignore[arg-type]
    with pytest.raises(UnexpectedValueError, match="v has value 'no'"):
        check("v", "no", str, choices=_NotToCopy())  # type: ignore[arg-type]


def test_check_choices_as_before_for_strings_sets_and_iterators() -> None:
    # A string's characters are the choices ("ab" is no substring match).
    with pytest.raises(UnexpectedValueError, match="v has value 'ab'"):
        check("v", "ab", str, choices="abc")
    # A set cannot hold a list item: refused as a choice, not a TypeError of hashing.
    with pytest.raises(UnexpectedValueError, match=r"v has value \['a'\]"):
        check("v", [["a"]], list, choices={"a"})
    # A one-shot iterator is read once, for every item.
    assert check("v", ["a", "b"], list, choices=(c for c in "ab")) == ["a", "b"]
    # Choices to case are cased, a set's too.
    assert check("v", "A", str, choices={"a", "b"}, case="lower") == "a"


@pytest.mark.parametrize("name", [None, 5, b"name"])
def test_check_refuses_a_name_that_is_not_a_string_up_front(name: Any) -> None:
    # It failed with an AttributeError only when a value was wrong ("name.partition").
    with pytest.raises(UnexpectedValueError, match="name must be a string"):
        check(name, "a", str)
    with pytest.raises(UnexpectedValueError, match="name must be a string"):
        check(name, "a", str, regex="b")


class _MultiItems(Mapping[str, Any]):
    """A multidict-like mapping: ``items()`` repeats a key with each of its values."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> Any:
        return next(value for name, value in self._pairs if name == key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._pairs))

    def __len__(self) -> int:
        return len(dict.fromkeys(name for name, _ in self._pairs))

    def items(self) -> Any:
        return list(self._pairs)


def test_redact_values_keeps_every_value_of_a_repeated_key() -> None:
    # QueryParams.items() gives one value per key: ids 2 and 3 were dropped.
    params = httpx.QueryParams("ids=1&ids=2&ids=3&token=s3cret&token=t2&one=x")
    assert redact_values(params, ["token"]) == {
        "ids": ["1", "2", "3"],
        "token": "REDACTED",
        "one": "x",
    }
    headers = httpx.Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Authorization", "x")])
    assert redact_values(headers, ["Authorization"]) == {
        "set-cookie": ["a=1", "b=2"],
        "authorization": "REDACTED",
    }
    multi = _MultiItems([("q", {"token": "s"}), ("q", 2), ("token", "s"), ("token", "t")])
    assert redact_values({"params": multi}, "token") == {
        "params": {"q": [{"token": "REDACTED"}, 2], "token": "REDACTED"}
    }


def test_check_items_type_refuses_a_mapping() -> None:
    # Iterated, a dict came back as the list of its keys: values lost, and no dict.
    with pytest.raises(TypeError, match="filters is a dict: items_type checks the items"):
        check("filters", {"name": "bob", "age": "3"}, dict, items_type=str)


@pytest.mark.parametrize(
    ("value", "kind", "choices"),
    [(1, int, [True]), (True, bool, [1]), (0, int, {False}), (False, bool, (0, 1))],
)
def test_check_choices_tell_a_bool_from_an_int(value: Any, kind: type, choices: Any) -> None:
    # True == 1: choices=[True] took 1 and choices=[1] took True, where the type check
    # refuses a bool for an int.
    with pytest.raises(UnexpectedValueError, match="expected one of"):
        check("n", value, kind, choices=choices)


def test_check_choices_still_take_equal_numbers_and_long_ranges() -> None:
    assert check("n", 1.0, float, choices=[1, 2]) == 1.0
    assert check("n", True, bool, choices=[True]) is True
    assert check("n", 10**12, int, choices=range(2**40)) == 10**12
    with pytest.raises(UnexpectedValueError):
        check("n", True, bool, choices=range(2))
