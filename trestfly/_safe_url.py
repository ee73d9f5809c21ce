"""A URL as error messages and log lines show it: without its secrets (pure).

Messages travel: ``logger.exception``, a crawl's WARNING for a collected failure, an error
tracker.  So the URL in them never carries the ``user:password@`` part, nor the values of
query parameters that are credentials by name, nor those the caller listed in
``redact_fields``.  Everything else stays, since ``?page=3`` is what one debugs with.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import httpx

#: Query parameters and body keys (lower case) whose values are never shown, whatever
#: the options say: the names APIs give credentials in URLs and bodies (OAuth tokens, API
#: keys, AWS presigned URLs).  Names that only end like one are caught by SECRET_SUFFIXES.
SECRET_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "apikeys",
        "assertion",  # OAuth's JWT bearer grant (RFC 7523)
        "auth",
        "authorization",
        "client_secret",
        "code_verifier",  # OAuth's PKCE (RFC 7636)
        "id_token",
        "key",
        "otp",
        "passcode",
        "password",
        "refresh_token",
        "secret",
        "sig",
        "signature",
        "token",
        "x-amz-credential",
        "x-amz-security-token",
        "x-amz-signature",
    }
)

#: Endings of credential names, compared without case, "-" and "_": ``accessToken``,
#: ``clientSecret``, ``X-Goog-Api-Key``, ``userPassword``, ``X-Vault-Token``,
#: ``access_key`` (ipstack), ``aws_secret_access_key``, ``private_key``,
#: ``subscription-key`` (Azure), ``client_assertion`` (OAuth's JWT bearer), ``jwt``,
#: ``passphrase``, ``pwd``, ``sessionid`` / ``JSESSIONID``.  A pagination cursor named
#: ``pageToken`` is hidden too: a log line that shows too little costs a debugging
#: step, one that shows a credential cannot be taken back.  Not every name ending in
#: "key", though: ``sort_key``, ``partition_key`` and ``idempotency_key`` are what one
#: debugs with.
SECRET_SUFFIXES: tuple[str, ...] = (
    "accesskey",
    "apikey",
    "appkey",
    "applicationkey",
    "clientassertion",
    "credential",
    "credentials",
    "jwt",
    "passphrase",
    "passwd",
    "password",
    "privatekey",
    "pwd",
    "secret",
    "secretkey",
    "sessionid",
    "signature",
    "subscriptionkey",
    "token",
)


#: Words that mark a credential anywhere in a name: ``password_confirmation`` (Rails),
#: ``new_password1`` (Django), ``passwordConfirm``; the password beside them was hidden.
SECRET_PARTS: tuple[str, ...] = ("password", "passwd")


#: SECRET_PARAMS as names are compared with them: without "-" and "_".
_SQUASHED_PARAMS: frozenset[str] = frozenset(
    name.replace("-", "").replace("_", "") for name in SECRET_PARAMS
)

#: Secret names whose plural is no credential: ``keys`` lists lookup keys (CouchDB's
#: views, batch reads), where ``key`` alone is Google's API key.
_NO_PLURAL: frozenset[str] = frozenset({"key"})

#: Names that count, not hold, tokens: ``max_tokens``, ``maxOutputTokens``,
#: ``total_tokens`` (LLM APIs) are no list of credentials.  A whole first word only
#: (``max`` then a separator or a capital): as a bare prefix it let ``minio_secrets``
#: and ``mint_api_keys`` through.
_COUNT = re.compile(r"(?i:max|min|num|total)(?:[-_]|(?=[A-Z]))")


def _is_credential(squashed: str) -> bool:
    """Whether a lower-case name without "-" and "_" is a credential's."""
    return (
        squashed in _SQUASHED_PARAMS
        or squashed.endswith(SECRET_SUFFIXES)
        or any(part in squashed for part in SECRET_PARTS)
    )


#: What separates the parts of a bracketed name (``filter[api_key]``, ``token[]``).
_BRACKETS = re.compile(r"[\[\]]+")


def is_secret_name(name: object, extra: Collection[str] = ()) -> bool:
    """Whether the value under ``name`` (a query parameter or a body key) must be hidden:
    a credential's name (SECRET_PARAMS, SECRET_SUFFIXES, SECRET_PARTS) or its plural
    (``api_keys``, ``tokens``; not ``keys``, nor a count such as ``max_tokens``), compared
    without case, "-" and "_", or one of ``extra`` (lower case), compared without case.
    A bytes name is read as latin-1, as httpx encodes it: a form body's
    ``{b"password": ...}`` is sent as ``password=...``, and was logged in clear."""
    if isinstance(name, bytes | bytearray):
        name = name.decode("latin-1")
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    if lowered in SECRET_PARAMS or lowered in extra:
        return True
    # SECRET_PARAMS are compared without separators too, and a plural is a list of the
    # same credentials: "api_keys", "access_tokens", "tokens" and "secrets" were quoted in
    # check() errors and URLs while "apiKeys" and "passwords" were hidden.
    squashed = lowered.replace("-", "").replace("_", "")
    if _is_credential(squashed):
        return True
    singular = squashed[:-1]
    if (
        squashed.endswith("s")
        and singular not in _NO_PLURAL
        and not _COUNT.match(name)
        and _is_credential(singular)
    ):
        return True
    if "[" in lowered:
        # PHP/Rails-style names: access_token[] and filter[api_key] are the credential's
        # own names with brackets around them or after them.
        parts = [part for part in _BRACKETS.split(lowered) if part]
        return any(is_secret_name(part, extra) for part in parts)
    return False


def safe_url(
    url: httpx.URL | str, redact_fields: Collection[str] = (), redact_value: str = "REDACTED"
) -> str:
    """``url`` without user information, with the values of secret query parameters
    (see :func:`is_secret_name`; ``redact_fields`` too, matched without case) set to
    ``redact_value``, and those of a fragment made of ``name=value`` pairs too."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    extra = {field.lower() for field in redact_fields}
    if parsed.query:
        safe = _redacted(parsed.params, extra, redact_value)
        if safe is not None:
            parsed = parsed.copy_with(params=safe)
    if parsed.fragment and "=" in parsed.fragment:
        # OAuth's implicit flow returns tokens in the fragment (#access_token=...&...):
        # a fragment of name=value pairs is redacted as a query is.
        safe = _redacted(httpx.QueryParams(parsed.fragment), extra, redact_value)
        if safe is not None:
            parsed = parsed.copy_with(fragment=str(httpx.QueryParams(tuple(safe))))
    if parsed.userinfo:
        parsed = parsed.copy_with(userinfo=b"")
    return str(parsed)


def _redacted(
    params: httpx.QueryParams, extra: Collection[str], redact_value: str
) -> list[tuple[str, str]] | None:
    """``params`` with the values of secret names replaced, or None when none is."""
    pairs = params.multi_items()
    if not any(is_secret_name(key, extra) for key, _ in pairs):
        return None
    return [(key, redact_value if is_secret_name(key, extra) else value) for key, value in pairs]
