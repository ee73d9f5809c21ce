"""What a call logs: each attempt (DEBUG, ``trestfly.request``) and each retry (INFO,
``trestfly.retry``).

The messages are stable, and every figure in them is also in the record's ``extra``
under a ``trestfly_`` key, so that structured log handlers need not parse text.  What is
logged of a request goes through :func:`trestfly._redact.describe_attempt`: secrets
(redacted fields, restricted paths) never reach a handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._options import CallOptions
from ._redact import describe_attempt, to_log_text
from ._stats import RetryRecord

request_log = logging.getLogger("trestfly.request")
retry_log = logging.getLogger("trestfly.retry")


def log_attempt(
    method: str,
    url: str,
    attempt: int,
    request_kwargs: Mapping[str, Any],
    options: CallOptions,
) -> None:
    """Log an attempt about to be sent (call only when DEBUG is on for it: describing the
    request costs more than the check).

    Logging never fails a request: what cannot be described (a JSON body nested deeper
    than the redaction's recursion goes, arguments httpx will refuse with its own
    error) is logged as not described, the URL still redacted.
    """
    try:
        extra = describe_attempt(
            method=method,
            url=url,
            attempt=attempt,
            request_kwargs=request_kwargs,
            restricted_paths=options.restricted_paths,
            redact_fields=options.redact_fields,
            redact_value=options.redact_value,
        )
    except Exception as exc:  # RecursionError included
        extra = {
            "trestfly_method": method,
            "trestfly_url": options.shown_url(url),
            "trestfly_attempt": attempt,
            "trestfly_params": f"<not described: {type(exc).__name__}>",
            "trestfly_body": f"<not described: {type(exc).__name__}>",
            "trestfly_headers": None,
        }
    request_log.debug(
        "request %s %s attempt=%d params=%s body=%s",
        method,
        extra["trestfly_url"],
        attempt,
        to_log_text(extra["trestfly_params"]),
        to_log_text(extra["trestfly_body"]),
        extra=extra,
    )


def log_retry(method: str, shown_url: str, record: RetryRecord, max_retries: int) -> None:
    """Log a retry about to be waited for (``shown_url``: the URL already redacted)."""
    # Two stable messages: an uncounted retry's number may pass `retries`.
    message = (
        "retrying %s %s in %.3f s (retry %d of %d) after %s"
        if record.counted
        else "retrying %s %s in %.3f s (retry %d, not counted against %d) after %s"
    )
    retry_log.info(
        message,
        method,
        shown_url,
        record.delay,
        record.retry,
        max_retries,
        record.status if record.status is not None else record.error,
        extra={
            "trestfly_method": method,
            "trestfly_url": shown_url,
            "trestfly_retry": record.retry,
            "trestfly_delay": record.delay,
            "trestfly_status": record.status,
            "trestfly_error": record.error,
            "trestfly_retry_after": record.retry_after,
            "trestfly_counted": record.counted,
        },
    )


#: Characters of a ``Retry-After`` value quoted by the warning below: enough to see
#: what the server meant ("30 seconds", "1.5s"), not a whole header of junk.
SHOWN_RETRY_AFTER = 40


def log_clock_skew(origin: str, ahead: float) -> None:
    """Warn that an origin's clock is off this machine's (the caller says it once per
    origin and session): its dated hints are read against its own ``Date`` from now on,
    and a user seeing waits a second longer than announced learns why."""
    retry_log.warning(
        "the clock of %s is %.0f s %s this machine's (its Date header): its Retry-After "
        "dates and rate-limit resets are read against its own clock (said once per origin)",
        origin,
        abs(ahead),
        "behind" if ahead > 0 else "ahead of",
        extra={"trestfly_origin": origin, "trestfly_clock_ahead": ahead},
    )


def log_unread_retry_after(origin: str, status: int, values: tuple[str, ...]) -> None:
    """Warn that an origin's ``Retry-After`` was not understood (the caller says it
    once per origin and session): the calls back off on their own instead of waiting
    what the server meant, and a user reading "why is it not waiting?" learns why."""
    shown = ", ".join(repr(value[:SHOWN_RETRY_AFTER]) for value in values)
    retry_log.warning(
        "Retry-After %s of a %d from %s is neither delay-seconds nor an HTTP-date: "
        "ignored, the client backs off on its own (said once per origin)",
        shown,
        status,
        origin,
        extra={
            "trestfly_origin": origin,
            "trestfly_status": status,
            "trestfly_retry_after_fields": tuple(v[:SHOWN_RETRY_AFTER] for v in values),
        },
    )
