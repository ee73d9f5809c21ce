"""Building the httpx.AsyncClient a session owns: TLS, proxies, timeouts, pool size.

Only httpx's public constructor arguments are used.  Deprecated spellings (``verify=<str>``,
``cert=``) are turned into an ``ssl.SSLContext`` here so users keep RESTfly's simple
settings without httpx's deprecation warnings.
"""

from __future__ import annotations

import math
import os
import platform
import ssl
from collections.abc import Mapping

import httpx

from ._transport import ShardedTransport
from ._version import __version__
from .errors import UnexpectedValueError

CertTypes = str | tuple[str, str] | tuple[str, str, str]
VerifyTypes = bool | str | ssl.SSLContext
ProxyURL = str | httpx.URL | httpx.Proxy
ProxiesTypes = ProxyURL | Mapping[str, ProxyURL]
TimeoutTypes = float | int | httpx.Timeout | None


def user_agent(*, vendor: str, product: str, build: str, lib_name: str, lib_version: str) -> str:
    """The RESTfly-style User-Agent string, naming the SDK and the platform.

    Raises:
        UnexpectedValueError: a part is not printable ASCII (httpx sends header values
            as ASCII, and would fail on entering the session with a bare error).
    """
    parts = {
        "vendor": vendor,
        "product": product,
        "build": build,
        "lib_name": lib_name,
        "lib_version": lib_version,
    }
    for name, value in parts.items():
        text = str(value)
        if not (text.isascii() and text.isprintable()):
            raise UnexpectedValueError(
                f"the User-Agent's {name} {value!r} must be printable ASCII (it is sent "
                "in a header)"
            )
    return (
        f"Integration/1.0 ({vendor}; {product}; Build/{build}) {lib_name}/{lib_version} "
        f"(Trestfly/{__version__}; Python/{platform.python_version()}; "
        f"{platform.system()}/{platform.machine()})"
    )


def ssl_setting(verify: VerifyTypes, cert: CertTypes | None) -> bool | ssl.SSLContext:
    """What to pass as httpx's ``verify=``: a bool when it suffices, else an SSLContext."""
    if isinstance(verify, bool) and cert is None:
        return verify
    context = trust_context(verify)
    if cert is not None:
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        elif len(cert) == 2:
            context.load_cert_chain(cert[0], cert[1])
        else:
            context.load_cert_chain(cert[0], cert[1], cert[2])
    return context


def trust_context(verify: VerifyTypes) -> ssl.SSLContext:
    """The SSLContext that checks servers as ``verify`` says (before any client cert)."""
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif isinstance(verify, str):
        # A CA bundle file or, as requests and httpx also take, a directory of them.
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    elif verify:
        # The trust store httpx itself uses, SSL_CERT_FILE / SSL_CERT_DIR honoured: adding
        # a client certificate must not drop an internal CA the environment names.
        context = httpx.create_ssl_context(verify=True, trust_env=True)
    else:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def timeout_setting(timeout: TimeoutTypes) -> httpx.Timeout:
    """Seconds without progress on connect, read, write and pool; a Timeout passes through."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise UnexpectedValueError(
            "timeout must be a positive number of seconds, an httpx.Timeout or None, "
            f"got {timeout!r}"
        )
    return httpx.Timeout(timeout)


#: Proxy URL schemes httpx's transports accept.
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def check_proxies(proxies: object) -> None:
    """Raise UnexpectedValueError unless ``proxies`` is None, a proxy URL (a string,
    ``httpx.URL`` or ``httpx.Proxy``), or RESTfly's mapping of ``http``/``https``/``all``
    to proxy URLs.  Messages never repeat a URL:
    proxy URLs often carry a password."""
    if proxies is None or isinstance(proxies, httpx.Proxy):  # httpx checked it
        return
    if isinstance(proxies, str | httpx.URL):
        entries: list[tuple[str, object]] = [("proxies", proxies)]
    elif isinstance(proxies, Mapping):
        entries = []
        for scheme, url in proxies.items():
            key = scheme if isinstance(scheme, str) and "://" in scheme else f"{scheme}://"
            if key not in ("http://", "https://", "all://"):
                raise UnexpectedValueError(
                    f"proxies keys must be 'http', 'https' or 'all', got {scheme!r}"
                )
            entries.append((f"proxies[{scheme!r}]", url))
    else:
        raise UnexpectedValueError(
            f"proxies must be a proxy URL or a mapping, got a {type(proxies).__name__}"
        )
    for where, url in entries:
        if isinstance(url, httpx.Proxy):
            continue
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


def build_transports(
    *,
    max_connections: int,
    verify: bool | ssl.SSLContext,
    proxies: ProxiesTypes | None,
    http2: bool,
) -> tuple[httpx.AsyncBaseTransport, dict[str, httpx.AsyncBaseTransport] | None]:
    """The transport (and proxy mounts) of a client trestfly builds itself.

    A :class:`~trestfly._transport.ShardedTransport` of one-connection pools: httpcore's
    pool costs work proportional to its size on every request, so one pool of 100
    connections serves a Trio client several times slower than 100 pools of one.  With
    HTTP/2 one pool multiplexes every request, so sharding would only get in its way.
    Proxies (a URL, or RESTfly's ``{"http": url, "https": url}``) are given to the
    transports, since a client with ``transport=`` no longer routes by its own ``proxy=``.
    """

    def transport(proxy: ProxyURL | None) -> httpx.AsyncBaseTransport:
        if http2:
            limits = httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
            return httpx.AsyncHTTPTransport(verify=verify, http2=True, limits=limits, proxy=proxy)
        return ShardedTransport(max_connections=max_connections, verify=verify, proxy=proxy)

    if proxies is None:
        return transport(None), None
    if isinstance(proxies, str | httpx.URL | httpx.Proxy):
        return transport(proxies), None
    check_proxies(proxies)
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    for scheme, url in proxies.items():
        mounts[scheme if "://" in scheme else f"{scheme}://"] = transport(url)
    return transport(None), mounts
