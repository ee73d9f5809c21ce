"""Building the httpx.AsyncClient a session owns: TLS, proxies, timeouts, pool size.

Only httpx's public constructor arguments are used.  Deprecated spellings (``verify=<str>``,
``cert=``) are turned into an ``ssl.SSLContext`` here so users keep RESTfly's simple
settings without httpx's deprecation warnings.
"""

from __future__ import annotations

import os
import platform
import ssl
from collections.abc import Mapping

import httpx

from ._arguments import is_finite
from ._proxies import check_proxies
from ._transport import ShardedTransport, given_trust
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
        UnexpectedValueError: a part is not a string (``str()`` of anything was taken:
            ``b'Acme'`` or a tuple's repr went out in the header), or not printable
            ASCII (httpx sends header values as ASCII, and would fail on entering the
            session with a bare error).
    """
    parts = {
        "vendor": vendor,
        "product": product,
        "build": build,
        "lib_name": lib_name,
        "lib_version": lib_version,
    }
    for name, value in parts.items():
        if not isinstance(value, str):
            raise UnexpectedValueError(
                f"the User-Agent's {name} must be a string, got a {type(value).__name__}"
            )
        if not (value.isascii() and value.isprintable()):
            raise UnexpectedValueError(
                f"the User-Agent's {name} {value!r} must be printable ASCII (it is sent "
                "in a header)"
            )
    return (
        f"Integration/1.0 ({vendor}; {product}; Build/{build}) {lib_name}/{lib_version} "
        f"(Trestfly/{__version__}; Python/{platform.python_version()}; "
        f"{platform.system()}/{platform.machine()})"
    )


def check_verify(verify: object) -> None:
    """Raise UnexpectedValueError unless ``verify`` is a bool, an SSLContext, or the path
    of a CA bundle file or directory that exists (it is loaded on entering the session,
    far from the setting)."""
    if isinstance(verify, bool | ssl.SSLContext):
        return
    if not isinstance(verify, str):
        # Anything else used to be taken by its truth, silently: 123 verified, [] did not.
        raise UnexpectedValueError(
            "ssl_verify must be True, False, a CA bundle path (str) or an ssl.SSLContext, "
            f"got a {type(verify).__name__}"
        )
    if not os.path.exists(verify):
        hint = (
            " (to turn verification off, pass False, not a string)"
            if verify.strip().lower() in ("false", "no", "off", "0", "true", "yes", "on", "1")
            else ""
        )
        raise UnexpectedValueError(
            f"ssl_verify {verify!r} names no CA bundle file or directory{hint}"
        )


def check_cert(cert: object) -> None:
    """Raise UnexpectedValueError unless ``cert`` is None, a certificate file, or a
    ``(cert, key)`` / ``(cert, key, password)`` tuple whose files exist.  Messages name
    the files and kinds, never the password."""
    if cert is None:
        return
    if isinstance(cert, str):
        certfile, keyfile = cert, None  # the key is in the certificate file
    elif isinstance(cert, tuple) and len(cert) in (2, 3):
        certfile, keyfile = cert[0], cert[1]
        if len(cert) == 3 and not isinstance(cert[2], str | bytes):
            raise UnexpectedValueError(
                f"cert's password must be a str or bytes, got a {type(cert[2]).__name__}"
            )
    else:
        kind = f"tuple of {len(cert)} items" if isinstance(cert, tuple) else type(cert).__name__
        raise UnexpectedValueError(
            "cert must be a certificate file path, or a (cert, key) or (cert, key, password) "
            f"tuple, got a {kind}"
        )
    for what, path in (("certificate", certfile), ("key", keyfile)):
        if what == "key" and path is None:
            continue
        if not isinstance(path, str):
            raise UnexpectedValueError(
                f"cert's {what} file must be a path (str), got a {type(path).__name__}"
            )
        if os.path.isfile(path):
            continue
        if what == "key":
            # Its place, not its value: a (cert, password) pair, the password where the
            # key file goes, had the password quoted as a file name.
            raise UnexpectedValueError(
                "cert's key file (cert[1]) does not exist (a password goes third: "
                "(cert, key, password))"
            )
        raise UnexpectedValueError(f"cert's {what} file {path!r} does not exist")


def check_cert_beside_verify(verify: VerifyTypes, cert: CertTypes | None) -> None:
    """Refuse ``cert=`` beside an ``ssl.SSLContext`` given as ``ssl_verify``.

    Raises:
        UnexpectedValueError: both were given.
    """
    if isinstance(verify, ssl.SSLContext) and cert is not None:
        # Loading the certificate would change the caller's own context: every session
        # and client sharing it would present this certificate from then on.
        raise UnexpectedValueError(
            "cert= cannot be added to an ssl.SSLContext given as ssl_verify (it would "
            "change your context for everything that shares it): load the certificate "
            "into it yourself, context.load_cert_chain(...), and drop cert="
        )


def ssl_setting(verify: VerifyTypes, cert: CertTypes | None) -> bool | ssl.SSLContext:
    """What to pass as httpx's ``verify=``: a bool when it suffices, else an SSLContext.

    Raises:
        UnexpectedValueError: the certificate or its key cannot be loaded (not PEM, a
            wrong password); the message names the file, never its contents.
    """
    if isinstance(verify, bool) and cert is None:
        return verify
    check_cert_beside_verify(verify, cert)
    context = trust_context(verify)
    if cert is not None:
        try:
            if isinstance(cert, str):
                context.load_cert_chain(cert)
            elif len(cert) == 2:
                context.load_cert_chain(cert[0], cert[1])
            else:
                context.load_cert_chain(cert[0], cert[1], cert[2])
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            certfile = cert if isinstance(cert, str) else cert[0]
            raise UnexpectedValueError(
                f"cert: cannot load the client certificate {certfile!r} or its key: {exc}"
            ) from exc
    return context


def trust_context(verify: VerifyTypes) -> ssl.SSLContext:
    """The SSLContext that checks servers as ``verify`` says (before any client cert)."""
    given = given_trust(verify, "ssl_verify")
    if given is not None:
        context = given
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
    check_timeout(timeout)
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


def check_timeout(timeout: object) -> None:
    """Raise UnexpectedValueError unless ``timeout`` is a positive number of seconds,
    None, or an httpx.Timeout of those: httpx takes anything, and fails inside the
    transport, with a bare error, on a negative or NaN one."""
    if timeout is None or _positive_seconds(timeout):
        return
    if not isinstance(timeout, httpx.Timeout):
        raise UnexpectedValueError(
            "timeout must be a positive number of seconds, an httpx.Timeout or None, "
            f"got {timeout!r}"
        )
    for field, seconds in timeout.as_dict().items():
        if seconds is not None and not _positive_seconds(seconds):
            raise UnexpectedValueError(
                f"timeout's {field} must be a positive number of seconds or None, got {seconds!r}"
            )


def _positive_seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and is_finite(value)
        and value > 0
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
