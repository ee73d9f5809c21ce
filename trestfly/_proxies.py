"""Checking proxy settings before httpx sees them (pure).

httpx refuses a bad proxy URL late (at the first request, or on entering the client)
and in words that quote the URL, which often carries a password.  These checks run at
construction, name the setting, and never repeat the URL.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping

import httpx

from ._urls import check_host_and_port
from .errors import UnexpectedValueError

__all__ = ["PROXY_SCHEMES", "check_proxies", "check_proxy"]

#: Proxy URL schemes httpx's transports accept.
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")

#: A key that can be quoted when refused: a bare word, like the schemes expected.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")


def check_proxies(proxies: object) -> None:
    """Raise UnexpectedValueError unless ``proxies`` is None, a proxy URL (a string,
    ``httpx.URL`` or ``httpx.Proxy``), or RESTfly's mapping of ``http``/``https``/``all``
    to proxy URLs."""
    if proxies is None:
        return
    if isinstance(proxies, httpx.Proxy | str | httpx.URL):
        check_proxy(proxies, "proxies")
        return
    if not isinstance(proxies, Mapping):
        raise UnexpectedValueError(
            f"proxies must be a proxy URL or a mapping, got a {type(proxies).__name__}"
        )
    for scheme, url in proxies.items():
        key = scheme if isinstance(scheme, str) and "://" in scheme else f"{scheme}://"
        if key not in ("http://", "https://", "all://"):
            raise UnexpectedValueError(
                f"proxies keys must be 'http', 'https' or 'all', got {_shown_key(scheme)}"
            )
        check_proxy(url, f"proxies[{scheme!r}]")


def _shown_key(key: object) -> str:
    """A refused key as the message quotes it: a bare word (``'ftp'``) as it is, anything
    else by its kind.  A key swapped with its value is the proxy URL, and the password in
    it (``{"http://user:pw@proxy:3128": ...}``)."""
    if isinstance(key, str) and _WORD.fullmatch(key):
        return repr(key)
    if isinstance(key, str) and "://" in key:
        return "a URL (a proxy URL is the value, its scheme the key)"
    return f"a {type(key).__name__} that is no scheme name"


def check_proxy(url: object, where: str) -> None:
    """Raise UnexpectedValueError unless ``url`` (the setting ``where``) is an
    ``httpx.Proxy``, or a proxy URL with a host and a scheme httpx can use; a
    ``socks5://`` one needs socksio installed."""
    if isinstance(url, httpx.Proxy):  # httpx checked the URL
        _check_socks(url.url.scheme)
        return
    if not isinstance(url, str | httpx.URL):
        raise UnexpectedValueError(f"{where} must be a URL string, got a {type(url).__name__}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in PROXY_SCHEMES or not parsed.host:
        raise UnexpectedValueError(
            f"{where} must be a URL with a host and a scheme among "
            f"{', '.join(PROXY_SCHEMES)} (e.g. http://proxy.internal:3128)"
        )
    # A password with a "/" in it ("http://admin:2024/Pa55@proxy:3128") made "admin"
    # the proxy's host and 2024 its port, silently; url= of that shape is refused.
    check_host_and_port(parsed, where)
    _check_socks(parsed.scheme)


def _check_socks(scheme: str) -> None:
    # httpx would raise a bare ImportError on entering the session, far from the setting.
    if scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise UnexpectedValueError(
            "a socks5:// proxy needs the socksio package: pip install 'httpx[socks]'"
        )
