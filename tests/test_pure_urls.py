"""URL joining: exactly one slash at each seam (RESTfly 1.x doubled them)."""

import httpx
import pytest

from trestfly._safe_url import is_secret_name, safe_url
from trestfly._urls import (
    build_url,
    check_base_path,
    check_host_and_port,
    check_url,
    is_absolute,
    join_path,
    with_params_in_query,
)
from trestfly.errors import UnexpectedValueError
from trestfly.utils import check


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


@pytest.mark.parametrize("path", ["ftp://files.example.com/x", "wss://h/stream", "S3://b/k"])
def test_a_url_of_another_scheme_as_a_path_is_refused(path: str) -> None:
    # It was joined as a relative path: https://h/v1/ftp://files.example.com/x was sent.
    with pytest.raises(UnexpectedValueError, match=r"scheme '(ftp|wss|s3)'"):
        build_url("https://h", "v1", path)


@pytest.mark.parametrize("path", ["users/a:b", "x?next=http://a", "items/urn:isbn:1"])
def test_a_relative_path_with_a_colon_or_a_url_in_its_query_is_joined(path: str) -> None:
    assert build_url("https://h", "", path) == f"https://h/{path}"


def test_relative_path_without_url_is_a_typed_error() -> None:
    with pytest.raises(UnexpectedValueError, match=r"'users'.*no url"):
        build_url(None, "", "users")
    # The path without its query (a restricted path's query is its params, all secret).
    with pytest.raises(UnexpectedValueError, match=r"path 'items': the session has no url"):
        build_url(None, "", "items?access_token=S3CRET&otp=123456")


def test_a_query_or_fragment_in_the_last_part_follows_the_path_as_it_is() -> None:
    # Joined as a segment, a query alone gained a slash (/v1/?page=2), and a value
    # ending in slashes lost them.
    assert join_path("https://h", "v1", "?page=2") == "https://h/v1?page=2"
    assert join_path("https://h", "v1", "users/?a=1") == "https://h/v1/users/?a=1"
    assert join_path("https://h", "v1", "1?x=a//") == "https://h/v1/1?x=a//"
    assert join_path("https://h", "v1", "users#part/") == "https://h/v1/users#part/"
    assert join_path("users", "?page=2") == "users?page=2"


def test_join_path_skips_empty_parts() -> None:
    assert join_path("", "a", "", "b") == "a/b"
    assert join_path("/users", "1") == "/users/1"
    assert join_path() == ""


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        (5, "url must be a string"),
        ("api.example.com", "http:// or https:// URL with a host"),
        ("localhost:8080", "http:// or https:// URL with a host"),
        ("ftp://api.example.com", "http:// or https:// URL with a host"),
        ("http://", "http:// or https:// URL with a host"),
        (" https://api.example.com", "http:// or https:// URL with a host"),
        ("https://api.example.com\n", r"not a valid URL \(Invalid non-printable"),
        ("http://[::1", r"not a valid URL \(Invalid port\)"),
        # Paths are joined after the URL: a query or fragment would swallow them.
        ("https://api.example.com/?tenant=7", "query string or a fragment"),
        ("https://api.example.com?", "query string or a fragment"),
        ("https://api.example.com/#v1", "query string or a fragment"),
        # Parsed by httpx, usable by no request: port 0 went to port 80, and the others
        # failed only after every retry.
        ("http://127.0.0.1:0", "port 0, outside 1-65535"),
        ("http://127.0.0.1:70000", "port 70000, outside 1-65535"),
        ("http://a b/", "host with a space"),
    ],
)
def test_a_session_url_paths_cannot_be_joined_to_is_refused(url: object, needle: str) -> None:
    with pytest.raises(UnexpectedValueError, match=needle):
        check_url(url)


def test_good_session_urls_pass_and_refusals_hide_url_secrets() -> None:
    for url in (None, "", "HTTPS://API.example.com", "http://user:pw@127.0.0.1:8080/root/"):
        check_url(url)
    for url in (
        "https://user:S3CRET@h/?token=S3CRET",
        "user:S3CRET@api.example.com",  # no scheme
        "https://user:S3CRET",  # no host: httpx takes the password for a port
    ):
        with pytest.raises(UnexpectedValueError, match="url") as caught:
            check_url(url)
        assert caught.value.__context__ is None
        assert "S3CRET" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:2024/S3CRET@api.example.com",
        "https://admin:2024/S3CRET@api.example.com/v1/",
        "https://admin:2024?S3CRET@api.example.com",
        "https://admin:2024#S3CRET@api.example.com",
        "http://ops:8080/S3CRET@127.0.0.1:9000",
    ],
)
def test_a_password_cut_short_by_a_slash_is_refused_unquoted(url: str) -> None:
    # "admin" read as the host and "2024" as its port, the password's rest as the
    # path: the session sent its calls to host "admin", and every message and log line
    # showed the password (no user information for the redaction to hide).
    # (A session URL's '?' or '#' is refused first for the query or fragment itself.)
    with pytest.raises(UnexpectedValueError, match=r"percent-encode|a fragment") as caught:
        check_url(url)
    assert "S3CRET" not in str(caught.value) and "admin" not in str(caught.value)
    with pytest.raises(UnexpectedValueError, match="percent-encode") as caught:
        check_host_and_port(httpx.URL(url), "path")  # an absolute path of a call
    assert "S3CRET" not in str(caught.value) and "admin" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://registry.example.com:8443/@scope",  # an npm scope, nothing before '@'
        "https://api.example.com:8443/v1/john@example.com",  # not the first segment
        "https://api.example.com/john@example.com",  # no port: the authority is whole
        "https://admin:2024%2FS3CRET@api.example.com",  # the '/' percent-encoded
    ],
)
def test_an_at_sign_later_in_a_url_is_no_cut_password(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    "base_path", [5, ["v1"], b"v1", "v1?tenant=7", "v1#x", "v1?api_key=S3CRET", "v1\n", "v\x001"]
)
def test_a_base_path_paths_cannot_be_joined_to_is_refused(base_path: object) -> None:
    with pytest.raises(UnexpectedValueError, match="base_path") as caught:
        check_base_path(base_path)
    assert "S3CRET" not in str(caught.value)
    assert check_base_path("/v1/") == "/v1/"
    check_url("http://[fe80::1%25eth0]:8080")  # an IPv6 zone keeps its '%'


@pytest.mark.parametrize(
    "name",
    [
        "access_key",
        "accessKey",
        "secret_key",
        "private_key",
        "app_key",
        "application_key",
        "subscription-key",
        "Ocp-Apim-Subscription-Key",
        "aws_secret_access_key",
    ],
)
def test_credential_names_ending_in_key_are_secret_in_urls(name: str) -> None:
    assert is_secret_name(name)
    assert safe_url(f"https://h/x?{name}=S3CRET&page=2") == f"https://h/x?{name}=REDACTED&page=2"


@pytest.mark.parametrize("name", ["sort_key", "partition_key", "keyword", "monkey", "page"])
def test_other_names_ending_in_key_stay_visible(name: str) -> None:
    assert not is_secret_name(name)
    assert safe_url(f"https://h/x?{name}=v") == f"https://h/x?{name}=v"


def test_a_fragment_of_name_value_pairs_is_redacted_as_a_query_is() -> None:
    # OAuth's implicit flow hands the token back in the fragment.
    shown = safe_url("https://h.test/cb?state=1#access_token=SECRET&token_type=bearer")
    assert shown == "https://h.test/cb?state=1#access_token=REDACTED&token_type=bearer"
    assert safe_url("https://h.test/docs#section-2") == "https://h.test/docs#section-2"
    assert safe_url("https://h.test/x#a=1&b=2") == "https://h.test/x#a=1&b=2"
    assert "SECRET" not in safe_url("https://h.test/x#id_token=SECRET", ("id_token",))


@pytest.mark.parametrize(
    "name",
    [
        "client_assertion",
        "jwt",
        "id_jwt",
        "passphrase",
        "pwd",
        "sessionid",
        "JSESSIONID",
        "session_id",
    ],
)
def test_assertions_passphrases_and_session_ids_are_secret(name: str) -> None:
    assert is_secret_name(name)
    assert "S3CR3T" not in safe_url(f"https://h.test/x?{name}=S3CR3T")


@pytest.mark.parametrize(
    "name",
    [
        "password_confirmation",  # Rails: the password beside it was hidden, not this
        "new_password1",  # Django
        "passwordConfirm",
        "user[password_confirmation]",
        "otp",
        "passcode",
        "authorization",
        "assertion",  # OAuth's JWT bearer grant
        "code_verifier",  # OAuth's PKCE
    ],
)
def test_confirmations_one_time_codes_and_oauth_grant_secrets_are_secret(name: str) -> None:
    assert is_secret_name(name)
    assert "S3CR3T" not in safe_url(f"https://h.test/x?{name}=S3CR3T")


@pytest.mark.parametrize("name", ["session", "sessions_count", "jwt_version_x", "pwd_policy"])
def test_names_that_only_contain_those_words_stay_visible(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "api_keys",
        "api-keys",
        "API_KEYS",
        "tokens",
        "access_tokens",
        "refreshTokens",
        "secrets",
        "client-secrets",
        "code-verifier",
        "signatures",
        # A count's first word, but not as a word of its own: they were shown.
        "minio_secrets",
        "mint_api_keys",
        "maximo_access_tokens",
    ],
)
def test_plurals_and_separated_spellings_of_credential_names_are_secret(name: str) -> None:
    # SECRET_PARAMS were compared with separators, suffixes had no plural: "api_keys",
    # "tokens" and "secrets" were quoted in check() errors and URLs ("apiKeys" was not).
    assert is_secret_name(name)
    assert "S3CR3T" not in safe_url(f"https://h.test/x?{name}=S3CR3T&page=2")
    with pytest.raises(UnexpectedValueError) as caught:
        check(name, ["sk_live_S3CR3T"], list, items_type=str, regex=r"^pk_")
    assert "S3CR3T" not in str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["keys", "sort_keys", "tokenizer", "tokenizers", "max_tokens", "maxOutputTokens", "MAX_TOKENS"],
)
def test_plurals_that_are_no_credentials_stay_visible(name: str) -> None:
    # Lookup keys (CouchDB's "keys") and counts of tokens (LLM APIs) are what one
    # debugs with.
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["access_token[]", "filter[api_key]", "user[password]", "a[b][client_secret]"]
)
def test_bracketed_credential_names_are_secret(name: str) -> None:
    # PHP/Rails-style names showed their values in clear.
    assert is_secret_name(name)
    assert "S3CR3T" not in safe_url(f"https://h.test/x?{name}=S3CR3T&page=2")


@pytest.mark.parametrize("name", ["filter[name]", "sort[key_order]", "ids[]", "[]"])
def test_bracketed_other_names_stay_visible(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        # Encoded again by httpx: ?expand=, a=1%3Bb%3D2 (one value), fields=a%2Cb.
        ("http://h/x?expand", {"page": 2}, "http://h/x?expand&page=2"),
        ("http://h/x?a=1;b=2", {"page": 2}, "http://h/x?a=1;b=2&page=2"),
        ("http://h/x?fields=a,b&ids[]=1", {"page": 2}, "http://h/x?fields=a,b&ids[]=1&page=2"),
        ("http://h/x?q=a%20b", [("q", "c d")], "http://h/x?q=c+d"),  # params' value wins
        ("http://h/x?page=1&q=x", {"page": 2}, "http://h/x?q=x&page=2"),
        ("http://h/x?a+b=1", {"a b": 2}, "http://h/x?a+b=2"),  # "+" is a space in a name
        ("http://h/x?a=1", {}, "http://h/x?a=1"),
        ("http://h/x?", {"page": 2}, "http://h/x?page=2"),
        ("http://h/x?a=1#top", {"page": 2}, "http://h/x?a=1&page=2#top"),
        # A name given no value replaces nothing, and adds no stray "&".
        ("http://h/x?q=trio", {"q": []}, "http://h/x?q=trio"),
        ("http://h/x?q=trio", {"tag": []}, "http://h/x?q=trio"),
    ],
)
def test_params_join_the_query_as_written(url: str, params: object, expected: str) -> None:
    assert with_params_in_query(url, params) == expected


def test_params_httpx_cannot_read_are_left_to_httpx() -> None:
    assert with_params_in_query("http://h/x?a=1", 5) is None
