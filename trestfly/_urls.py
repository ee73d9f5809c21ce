"""Pure URL joining: ``url / base_path / path`` with exactly one slash at each seam.

RESTfly 1.x built ``url + base_path + path`` with string concatenation, so ``get('/a')``
on a URL ending in ``/`` sent ``//a``.  Here every seam carries exactly one slash whatever
slashes the parts bring, and a trailing slash on the last part is kept because some APIs
route ``/items`` and ``/items/`` differently.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

import httpx

from ._safe_url import safe_url
from .errors import UnexpectedValueError

#: A URL of another scheme given as a path (``ftp://host/x``, ``wss://...``).
_OTHER_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def is_absolute(path: str) -> bool:
    """True when ``path`` is a full ``http://`` or ``https://`` URL (case-insensitive)."""
    head = path[:8].lower()
    return head.startswith("http://") or head.startswith("https://")


def join_path(*parts: str) -> str:
    """Join path segments with exactly one slash at each seam.

    Empty parts are skipped.  The first part keeps its leading slashes (it may be a URL
    or an absolute path); a trailing slash on the last argument's path is kept, as one
    slash.  A query or fragment written into the last argument (``"users?page=2"``,
    ``"?page=2"``) follows the joined path as it is: joined as a segment, a query alone
    gained a slash before it (``/v1/?page=2``) and a value ending in slashes lost them.
    """
    if not parts:
        return ""
    last = parts[-1]
    cut = min((index for index in (last.find("?"), last.find("#")) if index >= 0), default=-1)
    suffix = last[cut:] if cut >= 0 else ""
    last_path = last[:cut] if cut >= 0 else last
    present = [part for part in (*parts[:-1], last_path) if part]
    if not present:
        return suffix
    pieces = [present[0].rstrip("/")]
    pieces.extend(stripped for part in present[1:] if (stripped := part.strip("/")))
    joined = "/".join(pieces)
    if last_path.endswith("/"):
        joined += "/"
    return joined + suffix


def with_path_query(url: str, params: object) -> object:
    """The ``params=`` of a call whose URL has a query of its own (``search?q=trio``):
    that query with ``params`` merged over it (a name in both takes ``params``' value).

    httpx replaces a URL's query with ``params=`` (even ``params={}``), and the query
    written in the path was dropped silently; requests and RESTfly kept both.  Params
    httpx cannot read are left as they are, for httpx to refuse (and us to name).
    """
    if "?" not in url:
        return params
    try:
        # Only the names params sends a value for: merged, one given an empty list
        # replaced the path's own `q=trio` with nothing (as with_params_in_query).
        given = httpx.QueryParams(params).multi_items()  # type: ignore[arg-type]
        return httpx.URL(url).params.merge(httpx.QueryParams(tuple(given)))
    except (TypeError, ValueError, AttributeError):  # httpx's own, for params=5
        return params


def with_params_in_query(url: str, params: object) -> str | None:
    """``url`` with ``params`` added to the query written in it, that query kept as it
    is written (a pair whose name ``params`` also has is left out: ``params`` wins); or
    None when httpx cannot read ``params`` (for httpx to refuse, and us to name).

    Merged by httpx (:func:`with_path_query`), the written query was encoded again:
    ``?expand`` went out as ``?expand=``, ``a=1;b=2`` as ``a=1%3Bb%3D2`` (one value, no
    longer two), ``fields=a,b`` as ``fields=a%2Cb``.  requests kept it as written.
    """
    try:
        added = httpx.QueryParams(params)  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return None
    base, hash_mark, fragment = url.partition("#")
    path, _, query = base.partition("?")
    # The names params sends a value for: one given an empty list sends none, and
    # replaces nothing (nor adds a stray "&").
    names = {name for name, _ in added.multi_items()}
    kept = [pair for pair in query.split("&") if pair and _pair_name(pair) not in names]
    if names:
        kept.append(str(added))
    return path + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment


def _pair_name(pair: str) -> str:
    """The name of a written ``name=value`` pair, as httpx reads it (``+`` a space)."""
    return unquote_plus(pair.partition("=")[0])


def check_not_other_scheme(path: str) -> None:
    """Refuse a URL of another scheme than http(s) given as a path.

    Raises:
        UnexpectedValueError: ``path`` starts with ``scheme://`` (``ftp://host/x``).
    """
    scheme = _OTHER_SCHEME.match(path)
    if scheme:
        # Joined as a relative path it went to https://api.example.com/ftp://host/x.
        raise UnexpectedValueError(
            f"path is a URL of the scheme {scheme.group(1).lower()!r}: only http:// and "
            "https:// URLs are sent as they are (a relative path is joined after the "
            "session's url)"
        )


def build_url(url: str | None, base_path: str, path: str, *, use_base: bool = True) -> str:
    """The URL of one request.

    An absolute ``http(s)://`` ``path`` is used as it is.  Otherwise ``url``, then
    ``base_path`` (unless ``use_base`` is false), then ``path``, joined with one slash at
    each seam.

    Raises:
        UnexpectedValueError: a relative path with no session URL configured.
    """
    if is_absolute(path):
        return path
    check_not_other_scheme(path)
    if not url:
        raise UnexpectedValueError(
            # The path without its query: a restricted path's query is its params.
            f"cannot build a URL for path {safe_url(path).partition('?')[0]!r}: the "
            "session has no url "
            "(set the _url class attribute or pass url=...)"
        )
    if use_base and base_path:
        return join_path(url, base_path, path)
    return join_path(url, path)


def check_url(url: object) -> None:
    """Raise UnexpectedValueError unless ``url`` can be the session's URL: None or "" (no
    URL: only absolute paths are sent), or an ``http(s)://`` URL with a host and neither
    a query nor a fragment.  Messages never repeat the URL: it may carry a password.

    Paths are joined after the URL as text, so a query or fragment in it would swallow
    them: ``https://h/?tenant=7`` + ``users`` would send ``https://h/?tenant=7/users``.
    """
    if url is None or url == "":
        return
    if not isinstance(url, str):
        raise UnexpectedValueError(f"url must be a string, got a {type(url).__name__}")
    parsed = parse_url(url, "url")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UnexpectedValueError(
            "url must be an http:// or https:// URL with a host, e.g. 'https://api.example.com'"
        )
    if "?" in url or "#" in url:
        raise UnexpectedValueError(
            "url cannot have a query string or a fragment: the request paths are joined "
            "after it (pass query parameters per call, with params=)"
        )
    check_host_and_port(parsed, "url")


#: What follows a URL's host and port when it begins "text@host": what is left of user
#: information whose password held a '/', '?' or '#' (see check_host_and_port).
_PASSWORD_CUT = re.compile(r"[/?#][^/?#@]+@[A-Za-z0-9.-]+(?::\d*)?(?:[/?#]|$)")


def _password_cut(parsed: httpx.URL) -> bool:
    """Whether what follows ``parsed``'s host and port, as written, begins "text@host":
    a password whose '/', '?' or '#' ended the authority early."""
    text = str(parsed)
    after_scheme = text.find("://") + 3
    ends = [at for at in (text.find(mark, after_scheme) for mark in "/?#") if at >= 0]
    return bool(ends) and _PASSWORD_CUT.match(text, min(ends)) is not None


def check_host_and_port(parsed: httpx.URL, name: str) -> None:
    """Refuse what httpx parses but no request can use: a port outside 1-65535 (port 0
    silently went to port 80, 70000 failed only after every retry), a host with a
    space in it (percent-encoded by httpx)."""
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        # A password with a "/" in it ("user:98765432/x@host") ends the authority early:
        # its digits are read as the port.  They are quoted only when the "@" was read
        # as the end of user information, or when there is none.
        if "@" in str(parsed) and not parsed.userinfo:
            raise UnexpectedValueError(
                f"{name} has a port outside 1-65535, or a password with '/', '?' or '#' "
                "in it (percent-encode those)"
            )
        raise UnexpectedValueError(f"{name} has port {port}, outside 1-65535")
    if port is not None and not parsed.userinfo and _password_cut(parsed):
        # "https://admin:2024/Pa55@api.example.com": a password's "/" ended the
        # authority, "admin" read as the host, its digits as the port, the rest as the
        # path.  Accepted, the request went to host "admin", and every message and log
        # showed the password.  Nothing of it is quoted.
        raise UnexpectedValueError(
            f"{name} reads as a host and port followed by a path with '@' in its first "
            "segment: a password with '/', '?' or '#' in it (percent-encode those); or, if "
            "that '@' is the path's, write it %40"
        )
    host = parsed.host
    if "%" in host and ":" not in host:  # an IPv6 zone (fe80::1%eth0) may hold a '%'
        raise UnexpectedValueError(f"{name} has a host with a space or a '%' in it")


def parse_url(url: str, name: str) -> httpx.URL:
    """``url`` parsed, or UnexpectedValueError naming the argument ``name``."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # noqa: B018 (decoded here: a malformed IDNA label raises)
        return parsed
    except httpx.InvalidURL as exc:
        # Only httpx's words, not the part it quotes: "http://user:pw" has "pw" as its
        # port.  Raised out of the except block, so the original is not its __context__.
        problem = str(exc).partition(":")[0]
    except UnicodeError:
        # "https://xn--/x": a bare idna.IDNAError came out of the call, or of a link walk
        # that followed such a next link.
        problem = "a host IDNA cannot decode"
    raise UnexpectedValueError(f"{name} is not a valid URL ({problem})")


def check_base_path(base_path: object) -> str:
    """``base_path`` itself, when it is a path a request path can be joined after."""
    if not isinstance(base_path, str):
        raise UnexpectedValueError(f"base_path must be a string, got a {type(base_path).__name__}")
    if "?" in base_path or "#" in base_path:
        # Not quoted: "v1?api_key=..." is a secret.
        raise UnexpectedValueError(
            "base_path cannot have a query string or a fragment: the request paths are "
            "joined after it"
        )
    if "://" in base_path:
        # "https://api.example.com/v1" was joined after the URL's own path: every call
        # went to /https://api.example.com/v1/... on the right host.  Not quoted.
        raise UnexpectedValueError(
            "base_path is a path, not a URL: put the scheme and host in url= (or _url) "
            "and the path alone in base_path"
        )
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in base_path):
        # Accepted, it made every call fail with "cannot send GET <invalid URL>".
        raise UnexpectedValueError("base_path has a control character (a newline?) in it")
    return base_path
