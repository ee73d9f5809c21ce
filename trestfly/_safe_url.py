"""A URL as error messages and log lines show it: without its secrets (pure).

Messages travel: ``logger.exception``, a crawl's WARNING for a collected failure, an error
tracker.  So the URL in them never carries the ``user:password@`` part, nor the values of
query parameters that are credentials by name, nor those the caller listed in
``redact_fields``.  Everything else stays, since ``?page=3`` is what one debugs with.
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

#: Query parameters (lower case) whose values are never shown, whatever the options say:
#: the names APIs give credentials in URLs (OAuth tokens, API keys, AWS presigned URLs).
SECRET_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "auth",
        "client_secret",
        "id_token",
        "key",
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


def safe_url(
    url: httpx.URL | str, redact_fields: Collection[str] = (), redact_value: str = "REDACTED"
) -> str:
    """``url`` without user information, with the values of secret query parameters
    (SECRET_PARAMS, and ``redact_fields``, matched without case) set to
    ``redact_value``."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"
    if parsed.query:
        hidden = SECRET_PARAMS | {field.lower() for field in redact_fields}
        pairs = parsed.params.multi_items()
        if any(key.lower() in hidden for key, _ in pairs):
            safe = [(key, redact_value if key.lower() in hidden else v) for key, v in pairs]
            parsed = parsed.copy_with(params=safe)
    if parsed.userinfo:
        parsed = parsed.copy_with(userinfo=b"")
    return str(parsed)
