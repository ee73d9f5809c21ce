"""Origins, and what must not cross from one to another (pure, but for the request
whose headers :func:`drop_credentials_off_origin` edits).

An origin (``scheme://host:port``) is the unit of throttling: each has its own gate,
pacer and shared-state key.  A call can reach several (a redirect to a CDN, a
region), and credentials set for one must not reach the others.
"""

from __future__ import annotations

import httpx

from ._redact import is_secret_header

__all__ = [
    "ANSWERED",
    "CALL_REQUEST",
    "FIRST_URL",
    "HINT_AT",
    "REDACT_FIELDS",
    "drop_credentials_off_origin",
    "failed_after_an_answer",
    "is_https_upgrade",
    "origin_of",
]

#: The extensions key under which a request chain records its first URL.
FIRST_URL = "trestfly.first_url"
#: The extensions key under which an attempt carries its call's ``redact_fields``: the
#: headers they name are credentials too, dropped off origin with the others.
REDACT_FIELDS = "trestfly.redact_fields"
#: The response extensions key under which the headers hook records when it closed the
#: gate on a delay the headers announced (see OriginThrottle.on_response's ``hint_at``).
HINT_AT = "trestfly.hint_at"
#: The extensions key the headers hook sets on an attempt the server answered (a
#: redirect or an auth challenge httpx then follows within the same call).
ANSWERED = "trestfly.answered"
#: The extensions key marking the requests of a call's own chain: its attempt's request
#: and the redirects httpx builds from it (they copy its extensions).  A request an
#: ``httpx.Auth`` flow builds itself (a token fetch from an auth server) has none.
CALL_REQUEST = "trestfly.call_request"


class CallMark:
    """The value under CALL_REQUEST: one object shared by an attempt's request and the
    redirects httpx builds from it (extensions are copied, their values are not).  The
    headers hook marks it ``answered``, so an error raised while httpx follows an answer
    (a Location no request can go to) is known for the server's, where the error
    carries no request to tell it by."""

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = False


def origin_of(url: str | httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url`` (the port only when the URL names one)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port is not None else ""  # None: the default port
    # An IPv6 host in its brackets, as in a URL: without them http://[::1]:8080 and
    # http://[::1:8080] were both "http://::1:8080", one gate and one shared key.
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}{port}"


def failed_after_an_answer(exc: httpx.TransportError, method: str, url: str) -> bool:
    """Whether a transport failure came on a request httpx sent after the server had
    answered the call's own (following a redirect or an auth flow): the call's request
    reached the server, whatever the failure says (see classify_transport_error)."""
    try:
        failed = exc.request
    except RuntimeError:  # httpx did not say which request failed
        return False
    if failed.extensions.get(ANSWERED):
        return True
    if CALL_REQUEST not in failed.extensions:
        # A request of the auth flow's own (a token fetch) failed: whatever it was, the
        # call's request did not reach the server through it.  Compared below with the
        # call's URL, it read as a redirect: a POST whose token server refused the
        # connection was not retried.
        return False
    # A session= client runs none of trestfly's hooks: a redirect still shows in the
    # request that failed (a 303 turns a POST into a GET, a 307 goes elsewhere).
    first = httpx.URL(url)
    return failed.method != method or (failed.url.host, failed.url.port, failed.url.path) != (
        first.host,
        first.port,
        first.path,
    )


def is_https_upgrade(first: str, url: httpx.URL) -> bool:
    """Whether ``url`` is ``first`` (``http://host``) moved to https on the same host
    and default ports: the one cross-origin redirect httpx keeps credentials for."""
    # Compared as origins: an IPv6 host is bracketed in them (``http://[::1]``), and
    # compared with the bare host the upgrade was missed (the credentials dropped).
    if url.scheme != "https" or url.port is not None:
        return False
    return first == origin_of(url.copy_with(scheme="http"))


def drop_credentials_off_origin(request: httpx.Request) -> None:
    """Remove the credential headers of a request that a redirect took to another
    origin than its chain's first (an https upgrade of the same host excepted).

    httpx drops only Authorization (and cookies) when it follows a redirect to another
    origin: an API key in X-Api-Key, set on the client as the README shows, went along
    to whatever host the Location named (a CDN, a presigned storage URL, or an
    attacker's host, over plain http too).  Called for every request httpx sends,
    redirects included; a redirect's request shares the first one's extensions
    (trestfly gives each attempt its own).
    """
    first_url = request.extensions.get(FIRST_URL)
    if first_url is None:
        # The chain's first request: its origin is worked out only if a redirect
        # follows (every call's request passes here: the parse is a share of its cost).
        request.extensions[FIRST_URL] = request.url
        return
    first, here = origin_of(first_url), origin_of(request.url)
    if first == here or is_https_upgrade(first, request.url):
        return
    extra = {field.lower() for field in request.extensions.get(REDACT_FIELDS, ())}
    for name in [name for name in request.headers if is_secret_header(name, extra)]:
        del request.headers[name]
