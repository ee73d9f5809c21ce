"""Pure response conversion: JSON detection, then Box, plain JSON or the Response itself."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import httpx
from box import Box, BoxError, BoxList

from .errors import ResponseDecodeError


def is_json_content_type(content_type: str | None) -> bool:
    """``application/json`` or any ``*/*+json`` media type, parameters and case ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.endswith("+json") and "/" in media)


def parse_json(
    response: httpx.Response, redact_fields: Collection[str] = (), redact_value: str = "REDACTED"
) -> Any:
    """The parsed JSON body; None for an empty body.  ``redact_fields`` and
    ``redact_value`` are the call's, for the URL in the error message.

    Raises:
        ResponseDecodeError: the body claims JSON but does not parse.
    """
    body = response.content
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep
        raise ResponseDecodeError(
            response, str(exc), redact_fields=redact_fields, redact_value=redact_value
        ) from exc


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
    redact_fields: Collection[str] = (),
    redact_value: str = "REDACTED",
) -> Any:
    """What a request returns: Box/BoxList with ``box``, plain JSON with ``conv_json``.

    ``box`` wins when both are set.  A response that is not JSON stays a Response.
    """
    if not (box or conv_json):
        return response
    if not is_json_content_type(response.headers.get("content-type")):
        return response
    value = parse_json(response, redact_fields, redact_value)
    if not box:
        return value
    try:
        return to_box(value, box_attrs)
    except (BoxError, RecursionError) as exc:
        # The answer was a success: say so with the response, not a bare BoxKeyError.
        raise ResponseDecodeError(
            response,
            f"{type(exc).__name__}: {exc}",
            redact_fields=redact_fields,
            redact_value=redact_value,
            problem="is JSON that does not make a Box with the call's box_attrs",
        ) from exc
