"""Pure response conversion: JSON detection, then Box, plain JSON or the Response itself."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx
from box import Box, BoxError, BoxList

from ._redact import is_restricted
from .errors import ResponseDecodeError


def is_json_content_type(content_type: str | None) -> bool:
    """``application/json`` or any ``*/*+json`` media type, parameters and case ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.endswith("+json") and "/" in media)


#: How a call shows a URL in its messages (CallOptions.shown_url).
ShowUrl = Callable[[httpx.URL], str]


def _shown(response: httpx.Response, show_url: ShowUrl | None) -> str | None:
    return None if show_url is None else show_url(response.request.url)


def _declared_text(response: httpx.Response) -> str | None:
    """The body decoded with the charset its Content-Type declares, when that is not a
    Unicode encoding (JSON bytes are read as UTF-8/16/32 by ``json.loads``).

    RFC 8259 wants JSON in UTF-8, but some servers send ``application/json;
    charset=iso-8859-1`` and mean it: read as UTF-8, "José" failed to parse (requests,
    which RESTfly used, decoded with the declared charset).  ASCII is read as UTF-8, its
    superset; an unknown charset is ignored, as httpx ignores it.

    Raises:
        UnicodeDecodeError: the body is not in the declared charset.
    """
    charset = response.charset_encoding
    if charset is None:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return None
    if name.startswith("utf") or name == "ascii":
        return None
    try:
        return response.content.decode(name)
    except LookupError:
        # A codec but no text encoding ("charset=base64", "hex", "zlib"): ignored as an
        # unknown one is; bytes.decode() refused it with a bare LookupError.
        return None


def parse_json(
    response: httpx.Response,
    show_url: ShowUrl | None = None,
    *,
    restricted_paths: Collection[str] = (),
    redact_fields: Collection[str] = (),
    redact_value: str = "REDACTED",
) -> Any:
    """The parsed JSON body; None for an empty body.  ``show_url``: how the call shows
    a URL in an error message (default: secret query values redacted); the error of a
    request to one of ``restricted_paths`` (a token endpoint) quotes none of the body,
    and hides the values of ``redact_fields`` (as ``redact_value``) in the head it
    quotes of others.

    Raises:
        ResponseDecodeError: the body claims JSON but does not parse.
    """
    body = response.content
    if not body.strip():
        return None
    try:
        return json.loads(_declared_text(response) or body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep
        raise ResponseDecodeError(
            response,
            str(exc),
            url=_shown(response, show_url),
            hide_body=_restricted(response, restricted_paths),
            redact_fields=redact_fields,
            redact_value=redact_value,
        ) from exc


def _restricted(response: httpx.Response, restricted_paths: Collection[str]) -> bool:
    # Judged only when an error is raised: most calls go to no restricted path.
    return bool(restricted_paths) and is_restricted(str(response.request.url), restricted_paths)


def to_box(value: Any, box_attrs: Mapping[str, Any]) -> Any:
    """Wrap a parsed JSON document: objects in a Box, arrays in a BoxList, scalars as-is.

    Raises:
        BoxError: python-box refused the document (``box_dots=True`` and a key such as
            ``"10.0.0.1"`` or ``"a[0]"``).
    """
    if isinstance(value, dict):
        return Box(value, **box_attrs)
    if isinstance(value, list):
        return BoxList(value, **box_attrs)
    return value


def convert_response(
    response: httpx.Response,
    *,
    box: bool,
    box_attrs: Mapping[str, Any],
    conv_json: bool,
    show_url: ShowUrl | None = None,
    restricted_paths: Collection[str] = (),
    redact_fields: Collection[str] = (),
    redact_value: str = "REDACTED",
) -> Any:
    """What a request returns: Box/BoxList with ``box``, plain JSON with ``conv_json``.

    ``box`` wins when both are set.  A response that is not JSON stays a Response.  The
    error of a body that does not convert quotes none of it for ``restricted_paths``,
    and hides the values of ``redact_fields`` (as ``redact_value``) in the head it
    quotes of others.
    """
    if not (box or conv_json):
        return response
    if not is_json_content_type(response.headers.get("content-type")):
        return response
    value = parse_json(
        response,
        show_url,
        restricted_paths=restricted_paths,
        redact_fields=redact_fields,
        redact_value=redact_value,
    )
    if not box:
        return value
    try:
        return to_box(value, box_attrs)
    except (BoxError, RecursionError, TypeError) as exc:
        # The answer was a success: say so with the response, not a bare BoxKeyError.
        # TypeError: python-box's own for a document its options cannot take (a valid
        # box_recast={"id": int} meeting {"id": {...}}), or a box_attrs value no check
        # caught (they are checked with a trial Box when set).
        raise ResponseDecodeError(
            response,
            f"{type(exc).__name__}: {exc}",
            url=_shown(response, show_url),
            problem="is JSON that does not make a Box with the call's box_attrs",
            hide_body=_restricted(response, restricted_paths),
            redact_fields=redact_fields,
            redact_value=redact_value,
        ) from exc
