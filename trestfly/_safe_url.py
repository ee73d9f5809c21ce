"""A URL as error messages and log lines show it: without its secrets (pure).

Messages travel: ``logger.exception``, a crawl's WARNING for a collected failure, an error
tracker.  So the URL in them never carries the ``user:password@`` part, nor the values of
query parameters that are credentials by name, nor those the caller listed in
``redact_fields``.  Everything else stays, since ``?page=3`` is what one debugs with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote_plus

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
        "bearer",  # {"bearer": "..."}: the token of an Authorization: Bearer header
        "client_secret",
        "code_verifier",  # OAuth's PKCE (RFC 7636)
        "device_code",  # OAuth's device grant (RFC 8628): what the client polls with
        "id_token",
        "key",
        "otp",
        "pass",
        "passcode",
        "password",
        "pin",
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
#: ``passphrase``, ``pwd``, ``sessionid`` / ``JSESSIONID``, ``auth_key`` (DeepL),
#: ``license_key`` (MaxMind), ``sessionKey``.  A pagination cursor named
#: ``pageToken`` is hidden too: a log line that shows too little costs a debugging
#: step, one that shows a credential cannot be taken back.  Not every name ending in
#: "key", though: ``sort_key``, ``partition_key`` and ``idempotency_key`` are what one
#: debugs with.
SECRET_SUFFIXES: tuple[str, ...] = (
    "accesskey",
    "apikey",
    "appkey",
    "applicationkey",
    "authkey",
    "clientassertion",
    "credential",
    "credentials",
    "jwt",
    "licensekey",
    "passphrase",
    "passwd",
    "password",
    "privatekey",
    "pwd",
    "secret",
    "secretkey",
    "sessionid",
    "sessionkey",
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
#: views, batch reads), where ``key`` alone is Google's API key; ``pins`` lists pinned
#: items, where ``pin`` alone is a PIN.
_NO_PLURAL: frozenset[str] = frozenset({"key", "pin"})

#: What header names (and some parameter names) wrap around a credential's name: an
#: ``X-`` in front, a version or digest size behind (``X-OTP``, ``X-Api-Key-V2``,
#: ``X-Hub-Signature-256``).  Both rules (query names and header names) strip them, so
#: a name is secret in a header exactly when it is in a query.
_WRAPPING = re.compile(r"^x[-_](?=.)|(?<=.)[-_]v?\d+$", re.IGNORECASE)

#: OAuth's authorization code is a credential only beside these (RFC 6749): in the
#: token request (``grant_type=authorization_code``, 4.1.3) and in the authorization
#: response a redirect may lead to (``?code=...&state=...``, 4.1.2).  Any other
#: ``code`` (a country's, a currency's, an error's) is what one debugs with.
_CODE_CONTEXT: tuple[tuple[str, str | None], ...] = (
    ("grant_type", "authorization_code"),
    ("state", None),
)

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
    if _names_credential(name, extra):
        return True
    # Once, not again on what is left: a server's "x-x-x-...-a" (its redirect's query
    # reaches here) recursed until a RecursionError.
    bare = _WRAPPING.sub("", name)
    return bare != name and _names_credential(bare, extra)


def _names_credential(name: str, extra: Collection[str]) -> bool:
    """is_secret_name of ``name`` as it is, its wrapping left on."""
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


def context_names(pairs: Iterable[tuple[Any, Any]]) -> frozenset[str]:
    """Names secret only because of the others beside them in one query, form or body
    (``pairs``): ``code`` in an OAuth token request or authorization response."""
    values: dict[str, set[object]] = {}
    for key, value in pairs:
        name = key.decode("latin-1") if isinstance(key, bytes | bytearray) else str(key)
        values.setdefault(name.lower(), set()).add(value if isinstance(value, str) else None)
    for name, value in _CODE_CONTEXT:
        if name in values and (value is None or value in values[name]):
            return frozenset({"code"})
    return frozenset()


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
    # The fragment as written: httpx's `fragment` is decoded (%7F is a control
    # character there, which httpx then refused to write back).
    raw_fragment = str(parsed).partition("#")[2]
    if parsed.query:
        query = _redacted(parsed.query.decode("latin-1"), parsed.params, extra, redact_value)
        if query is not None:
            parsed = parsed.copy_with(query=query.encode("latin-1"))
    fragment = None
    if "=" in parsed.fragment:
        # OAuth's implicit flow returns tokens in the fragment (#access_token=...&...):
        # a fragment of name=value pairs is redacted as a query is.
        fragment = _redacted(raw_fragment, httpx.QueryParams(raw_fragment), extra, redact_value)
        decoded = httpx.QueryParams(parsed.fragment)
        if fragment is None and _redacted(parsed.fragment, decoded, extra, redact_value):
            # A pair only the decoded fragment shows (its "=" written %3D), as a page
            # script decoding it reads it: rebuilt from the pairs, as it always was.
            fragment = str(httpx.QueryParams(_safe_pairs(decoded, extra, redact_value)))
    if parsed.userinfo:
        parsed = parsed.copy_with(userinfo=b"")
    shown = str(parsed)
    if fragment is not None:
        shown = f"{shown.partition('#')[0]}#{fragment}"
    return shown


def _redacted(
    text: str, params: httpx.QueryParams, extra: Collection[str], redact_value: str
) -> str | None:
    """The query (or fragment) ``text``, read by httpx as ``params``, with the values of
    secret names replaced in place, every other byte as written; None when none is.
    (Rebuilt from the pairs, ``a=1;b=2`` showed as ``a=1%3Bb%3D2``, ``fields=a,b`` as
    ``a%2Cb`` and ``?expand`` as ``?expand=``: a request other than the one sent.)

    httpx splits a query at "&" only, but some servers split it at ";" too (the old
    HTML 4 advice): ``?a=1;token=...`` sent a token that httpx read as part of ``a``'s
    value.  So for redaction ";" separates pairs as well (see _cut_at_secret)."""
    extra = _with_context(extra, params.multi_items())
    pieces = text.split("&")
    changed = False
    for index, piece in enumerate(pieces):
        raw_key, _, raw_value = piece.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        shown = safe_value(key, value, extra, redact_value)
        if shown != value:
            pieces[index] = f"{raw_key}={quote(shown, safe=_SHOWN_AS_IS)}"
            changed = True
    return "&".join(pieces) if changed else None


def _safe_pairs(
    params: httpx.QueryParams, extra: Collection[str], redact_value: str
) -> tuple[tuple[str, str], ...]:
    """``params`` with the values of secret names replaced (see _redacted)."""
    pairs = params.multi_items()
    extra = _with_context(extra, pairs)
    return tuple((key, safe_value(key, value, extra, redact_value)) for key, value in pairs)


def _with_context(extra: Collection[str], pairs: list[tuple[str, str]]) -> set[str]:
    """``extra`` and the names secret in the context of ``pairs`` (see context_names),
    read as a server splitting at ";" too reads them."""
    return {*extra, *context_names(_split_at_semicolons(pairs))}


#: Characters a changed value keeps as they are when it is written back: what a
#: redacted ``1;token=REDACTED`` is made of, without meaning anything else there.
_SHOWN_AS_IS = ";=,:/@!$'()*[]~"


def _split_at_semicolons(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """``pairs`` as a server splitting at ";" too reads them: the context of an OAuth
    ``code`` (see context_names) may be in a part httpx reads as another's value."""
    for key, value in pairs:
        for piece in f"{key}={value}".split(";"):
            name, _, text = piece.partition("=")
            yield name.strip(), text


def safe_value(key: str, value: str, extra: Collection[str], redact_value: str) -> str:
    """A query value as URLs, errors and logs show it: ``redact_value`` under a secret
    name, else cut at a secret ``;name=`` inside it (see _cut_at_secret)."""
    # A name with ";" in it ("a;key" of "?a;key=...") is, split at ";", its last part's.
    last = key.rpartition(";")[2].strip()  # "a; key": spaces around names, as below
    if is_secret_name(key, extra) or is_secret_name(last, extra):
        return redact_value
    return _cut_at_secret(value, extra, redact_value)


def _cut_at_secret(value: str, extra: Collection[str], redact_value: str) -> str:
    """``value`` cut after the first ";"-separated ``name=`` of a secret name, whose value
    is redacted (``1;token=abc`` is ``1;token=REDACTED``).  Whatever follows is dropped:
    it may be the rest of the secret (``;`` is no character a token avoids)."""
    if ";" not in value:
        return value
    pieces = value.split(";")
    for index, piece in enumerate(pieces[1:], start=1):
        name, equals, _ = piece.partition("=")
        if equals and is_secret_name(name.strip(), extra):
            return ";".join([*pieces[:index], f"{name}={redact_value}"])
    return value


#: A member of a JSON object (or of a Python dict's repr, single-quoted: a common kind
#: of "JSON" that does not parse) in raw bytes: its key, then its value, a string up to
#: its closing quote or the end of the text (a quoted head may end inside it), or a bare
#: scalar (a number, true).
_MEMBER = re.compile(
    rb"""(["'])((?:(?!\1)[^\\]|\\.){1,100})\1\s*:\s*"""
    rb"""(?:(["'])((?:(?!\3)[^\\]|\\.)*)|([^\s,}\]'"]+))"""
)


#: A name-value pair outside quotes: a form's ``access_token=...&`` (a token endpoint
#: that ignored ``Accept: application/json`` and said JSON all the same), a JavaScript
#: object's ``{access_token: '...'``, a ``token=...;`` list, a header line's
#: ``Authorization: Bearer ...``.  Its value: quoted, or bare up to the next separator
#: (an auth scheme's word and the credential after it, as one).
_BARE_MEMBER = re.compile(
    rb"""(?<![\w\\\[\]])([A-Za-z_][\w.\[\]-]{0,99})\s*[:=]\s*"""
    rb"""(?:(["'])((?:(?!\2)[^\\]|\\.)*)|((?i:(?:Bearer|Basic|Digest|Token|Bot|"""
    rb"""Negotiate|ApiKey|Key)[ \t]+)?[^\s&;,}\]'"]+))"""
)


def hide_secret_values(
    text: bytes, extra: Collection[str] = (), redact_value: str = "REDACTED"
) -> bytes:
    """``text`` (the head of a JSON body that does not parse) with the value of every
    key named as a credential (or in ``extra``, lower case: the call's ``redact_fields``)
    replaced: a token endpoint's ``{"access_token": "..."`` with a trailing comma was
    quoted whole in the error.  A list or object value is replaced whole, up to its
    closing bracket or the end of the text (``{"tokens": ["tok_...", ...]`` hid only
    its ``[``).  Unquoted names count too: a form's ``access_token=...`` and a
    JavaScript object's ``{access_token: '...'`` were quoted whole."""
    hidden = redact_value.encode()
    for pattern, name_group, quoted_group in ((_MEMBER, 2, 3), (_BARE_MEMBER, 1, 2)):
        pieces: list[bytes] = []
        done = 0
        position = 0
        while (match := pattern.search(text, position)) is not None:
            position = match.end()
            if not is_secret_name(_key_name(match.group(name_group)), extra):
                continue
            group = quoted_group + 1 if match.group(quoted_group) is not None else quoted_group + 2
            start, end = match.start(group), match.end(group)
            if group == quoted_group + 2 and text[start : start + 1] in (b"[", b"{", b"("):
                end = position = _composite_end(text, start)
            pieces += [text[done:start], hidden]
            done = end
        pieces.append(text[done:])
        text = b"".join(pieces)
    return text


def _key_name(raw: bytes) -> bytes:
    """A JSON key as it reads once parsed: ``"\\u0074oken"`` is ``token``."""
    if b"\\" not in raw:
        return raw
    try:
        name = json.loads(b'"' + raw + b'"')
    except ValueError:  # a Python repr's escapes, or a key cut short
        return raw
    return name.encode("utf-8", "replace") if isinstance(name, str) else raw


def _composite_end(text: bytes, start: int) -> int:
    """Where the list, object or tuple opening at ``start`` closes (past its bracket),
    strings skipped; the end of ``text`` when it is cut off first."""
    depth = 0
    quote: int | None = None
    index = start
    while index < len(text):
        byte = text[index]
        if quote is not None:
            if byte == 0x5C:  # a backslash escapes the next byte
                index += 1
            elif byte == quote:
                quote = None
        elif byte in b"\"'":
            quote = byte
        elif byte in b"[{(":
            depth += 1
        elif byte in b"]})":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)
