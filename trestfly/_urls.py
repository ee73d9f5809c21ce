"""Pure URL joining: ``url / base_path / path`` with exactly one slash at each seam.

RESTfly 1.x built ``url + base_path + path`` with string concatenation, so ``get('/a')``
on a URL ending in ``/`` sent ``//a``.  Here every seam carries exactly one slash whatever
slashes the parts bring, and a trailing slash on the last part is kept because some APIs
route ``/items`` and ``/items/`` differently.
"""

from __future__ import annotations

from .errors import UnexpectedValueError


def is_absolute(path: str) -> bool:
    """True when ``path`` is a full ``http://`` or ``https://`` URL (case-insensitive)."""
    head = path[:8].lower()
    return head.startswith("http://") or head.startswith("https://")


def join_path(*parts: str) -> str:
    """Join path segments with exactly one slash at each seam.

    Empty parts are skipped.  The first part keeps its leading slashes (it may be a URL
    or an absolute path); a trailing slash on the last argument is kept, as one slash.
    """
    present = [part for part in parts if part]
    if not present:
        return ""
    pieces = [present[0].rstrip("/")]
    pieces.extend(stripped for part in present[1:] if (stripped := part.strip("/")))
    joined = "/".join(pieces)
    if parts[-1].endswith("/"):
        joined += "/"
    return joined


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
    if not url:
        raise UnexpectedValueError(
            f"cannot build a URL for path {path!r}: the session has no url "
            "(set the _url class attribute or pass url=...)"
        )
    if use_base and base_path:
        return join_path(url, base_path, path)
    return join_path(url, path)
