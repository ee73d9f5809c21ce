"""One logical call of a :class:`~trestfly.TrioAPISession`: its attempts, the retry
decisions between them, and what it returns or raises.

Each attempt reads top to bottom in :meth:`Call.run`: resolve the call's options and
URL, take the origin's admission and a concurrency slot, send through httpx, tell the
origin's throttle what came back (:meth:`Call._send_once`), classify the outcome
(:meth:`Call._attempt`), then decide with the pure rules of :mod:`trestfly._policy`
(:meth:`Call._decide`) and either return, raise, or sleep (a Trio sleep inside the
caller's cancel scope) and try again.  What it raises is built by
:mod:`trestfly._call_errors`, what it logs by :mod:`trestfly._call_log`.

A ``Call`` lives for one ``await api.get(...)``: it holds what the call has done so
far (retries, their history, the last outcome); the session holds what calls share
(gates, budget, counters, the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import httpx
import trio

from . import errors
from ._admission import (
    Admitted,
    GateClosed,
    OriginGate,
    SessionLeft,
    checkpoint_if_cancelled_or_past_deadline,
)
from ._budget import RetryBudget
from ._call_errors import (
    BUILD_ERRORS,
    bad_response,
    gate_error,
    invalid_request,
    response_error,
    transport_failure,
    unbuildable_argument,
    unfollowable_redirect,
    without_quoted_line,
)
from ._call_log import (
    log_attempt,
    log_retry,
    log_unread_retry_after,
    request_log,
    retry_log,
)
from ._convert import convert_response
from ._options import CallOptions, drop_none_fields, read_iterators_once, resolve
from ._origins import (
    CALL_REQUEST,
    HINT_AT,
    REDACT_FIELDS,
    CallMark,
    failed_after_an_answer,
    origin_of,
)
from ._policy import (
    Decision,
    TransportVerdict,
    can_send_again,
    classify_transport_error,
    counts_against_retries,
    decide,
    is_success,
    is_unreadable_location,
    processed_before_redirect,
    retryable_status,
)
from ._ratelimit import parse_quota, scan_headers, spent_quota_delay
from ._redact import is_restricted
from ._retry_after import parse_retry_after_fields
from ._stats import RetryRecord
from ._throttle import closes_gate, is_throttle
from ._urls import with_params_in_query, with_path_query
from .errors import StopReason

if TYPE_CHECKING:
    from ._session import TrioAPISession

__all__ = ["Call"]


@dataclass(slots=True)
class _Outcome:
    """What one attempt came to, when it did not end the call at once."""

    options: CallOptions
    url: str
    gate: OriginGate
    response: httpx.Response | None = None
    failure: Exception | None = None
    hint: float | None = None
    throttled: bool = False
    stale: bool = False
    #: The request cannot be sent as it is (no retry can help).
    invalid: bool = False
    #: A transport failure on a request sent after the server had answered the call's.
    answered: bool = False
    retryable: bool = False
    #: The request argument at fault, if invalid.
    argument: str | None = None
    #: A 304 the error map does not name: returned as it is.
    not_modified: bool = False
    #: The server said what to do (a throttle, a delay hint, a closed gate): a retry
    #: of it draws nothing on the budget (set by Call._decide).
    guided: bool = False

    @property
    def succeeded(self) -> bool:
        response = self.response
        return response is not None and (is_success(response.status_code) or self.not_modified)


class Call:
    """The attempts of one call of ``api`` (see the module docstring)."""

    __slots__ = (
        "_api",
        "_client",
        "_history",
        "_kwargs",
        "_last",
        "_mark",
        "_method",
        "_path",
        "_retries_done",
        "_uncounted",
        "_unguided",
    )

    def __init__(self, api: TrioAPISession, method: str, path: str, kwargs: dict[str, Any]) -> None:
        self._api = api
        self._method = method
        self._path = path
        self._kwargs = kwargs
        self._retries_done = 0
        # Retries of stale throttles (see RetryRecord.counted) made so far, at most
        # `retries`; `retries_done - uncounted` is what `retries` bounds.
        self._uncounted = 0
        # Whether the call retried a failure the server gave no guidance on.
        self._unguided = False
        self._history: list[RetryRecord] = []
        # The outcome of the attempt before this one (a response or a transport
        # failure): the call's last error, should admission refuse the next attempt.
        self._last: httpx.Response | Exception | None = None
        # The client the attempt in flight went through (see _attempt's cut-off check).
        self._client: httpx.AsyncClient | None = None
        # The current attempt's chain (see _send_once); None before the first is sent.
        self._mark: CallMark | None = None

    @property
    def retries_done(self) -> int:
        """The retries made so far."""
        return self._retries_done

    @property
    def history(self) -> tuple[RetryRecord, ...]:
        """One record per retry made so far, oldest first."""
        return tuple(self._history)

    async def run(self) -> Any:
        # Trio's rule, that every async call is a schedule point: a call whose transport
        # never waits (httpx.MockTransport, respx) had none, so a loop of calls starved
        # every other task, and a deadline around it never fired (Trio delivers a passed
        # deadline only when the scheduler runs).  About 10 us in-process, against a
        # network call's hundreds.
        await trio.lowlevel.checkpoint()
        api = self._api
        api._session  # noqa: B018 (raises when the session is not open)
        if not api._budget_started:
            api._budget = RetryBudget(api._retry_budget, trio.current_time())
            api._budget_started = True
        try:
            while True:
                outcome = await self._attempt()
                if outcome.succeeded:
                    return await self._succeed(outcome)
                if outcome.invalid and outcome.answered:
                    # The failed request was a redirect's: the server sent the call
                    # where no request can go (ftp://), which is no input of the
                    # caller's to correct.
                    api._counters.failures += 1
                    assert outcome.failure is not None
                    raise unfollowable_redirect(
                        self._method, outcome.url, outcome.options, outcome.failure
                    )
                if outcome.invalid:
                    assert outcome.failure is not None
                    # Raised here, out of the except block: the failure may quote a header
                    # value, which must not stay reachable as the error's __context__.
                    raise invalid_request(
                        self._method,
                        outcome.url,
                        outcome.options,
                        outcome.failure,
                        outcome.argument,
                    )
                # A cancelled scope's deadline reads as -inf, which decide() would take
                # for a deadline past: the caller's cancellation must win, as Cancelled
                # (and so must a deadline passed that Trio has not delivered yet).
                await checkpoint_if_cancelled_or_past_deadline()
                await self._retry_or_raise(outcome)
        finally:
            self._set_unguided(False)

    async def _attempt(self) -> _Outcome:
        """Send once and classify what came back; raise what ends the call at once."""
        api, method = self._api, self._method
        # Read at each attempt: a retry after the block closed gets trestfly's
        # "not open", not httpx's bare RuntimeError, and one after it was
        # entered again goes through the new client.
        try:
            session = api._session
        except errors.SessionNotOpenError:
            api._counters.failures += 1  # a call given up on, as at a gate
            raise
        options, request_kwargs = resolve(api._defaults, self._kwargs)
        url, origin, parsed_url = api._url_for(self._path, options.use_base)
        sent_url = url
        params = request_kwargs.get("params")
        if session.params and (params is not None or "?" in url):
            # A client's own default params: httpx merges them in and replaced the URL's
            # query (a next link's page=2) with the result, so it is given all of it.
            request_kwargs["params"] = with_path_query(url, params or {})
        elif params is not None and "?" in url:
            # The params join the query as it is written (see with_params_in_query).
            merged = with_params_in_query(url, params)
            if merged is not None:
                sent_url, request_kwargs["params"] = merged, None
        request_kwargs.setdefault("follow_redirects", api._follow_redirects)
        if api._per_request_headers is not None:
            request_kwargs["headers"] = self._with_user_agent(
                url, options, request_kwargs.get("headers")
            )
        if request_log.isEnabledFor(logging.DEBUG):
            log_attempt(method, sent_url, self._retries_done + 1, request_kwargs, options)
        gate = api._gate_for(origin)

        outcome = _Outcome(options, url, gate)
        self._client = self._mark = None
        try:
            response, outcome.hint, outcome.throttled, outcome.stale = await self._send_once(
                gate,
                sent_url,
                parsed_url if sent_url is url else sent_url,
                request_kwargs,
                options.redact_fields,
            )
            outcome.response = response
            if response.history and is_restricted(url, options.restricted_paths):
                # Errors and messages show the final URL: a restricted call
                # redirected elsewhere (a login's 307 to /v2/signin) showed its
                # query there, the username and tenant its params carried.
                outcome.options = replace(
                    options,
                    restricted_paths=options.restricted_paths | {response.request.url.path},
                )
        except GateClosed as closed:
            api._counters.failures += 1
            refused = gate_error(
                closed,
                self._last,
                api._status_errors,
                options,
                method,
                url,
                self._retries_done,
                self._history,
            )
            # Not chained from GateClosed (internal); a transport failure quoted
            # as the last error stays its cause.
            raise refused from refused.__cause__
        except (httpx.TooManyRedirects, httpx.DecodingError, httpx.StreamConsumed) as exc:
            api._counters.failures += 1
            raise bad_response(method, url, options, exc) from exc
        except (httpx.TransportError, httpx.InvalidURL, UnicodeEncodeError) as exc:
            if isinstance(exc, httpx.TransportError):
                outcome.answered = failed_after_an_answer(exc, method, url)
            else:
                # No request to tell by: a Location httpx cannot make a request of
                # (mailto:x@y) was reported as the caller's bad argument.
                outcome.answered = self._mark is not None and self._mark.answered
            verdict = classify_transport_error(exc, method, answered=outcome.answered)
            if outcome.answered and is_unreadable_location(exc):
                # A Location that is no URL (http://[::zz]/): retried as a connection
                # failure, `retries` times, though every answer will say the same.
                verdict = TransportVerdict.INVALID
            if verdict is TransportVerdict.INVALID and not outcome.answered:
                api._counters.attempts -= 1  # never sent: no request could be made of it
            else:
                api._counters.transport_errors += 1
            client = self._client
            if verdict is not TransportVerdict.INVALID and client is not None and client.is_closed:
                # The client that carried the attempt was closed under it: the session's
                # block ended (and maybe began again) while the server was answering.  A
                # GET's ReadError was retried into "not open" (or through the next
                # block's client: sent twice), a POST's was a ConnectionError.
                api._counters.failures += 1
                if getattr(api, "_httpx_client", None) is client:
                    # Still the session's client: closed by its owner (a session= client's
                    # code, say) with the session open, not by the block's end.
                    raise closed_while_open(
                        api, client, cut_off=f"{method} {options.shown_url(url)}"
                    ) from exc
                raise errors.SessionNotOpenError(
                    f"{method} {options.shown_url(url)}: cut off by the closing of the "
                    f"client it went through ({type(api).__name__}'s block ended while it "
                    "was out); the server may have received it"
                ) from exc
            outcome.failure = without_quoted_line(exc)
            outcome.invalid = verdict is TransportVerdict.INVALID
            outcome.retryable = verdict is TransportVerdict.RETRY
        except errors.SessionNotOpenError:
            # The block ended while this attempt waited (see _send_once).
            api._counters.failures += 1
            raise
        except BUILD_ERRORS as exc:
            if isinstance(exc, UnicodeError) and self._mark is not None and self._mark.answered:
                # A redirect to a host IDNA refuses (https://xn--a.com/): the server's
                # answer, where the bare idna error came out of the call.
                outcome.failure, outcome.invalid, outcome.answered = exc, True, True
                return outcome
            outcome.argument = unbuildable_argument(session, method, url, request_kwargs)
            if outcome.argument is None:
                raise  # the transport's, an auth flow's or a hook's own failure
            api._counters.attempts -= 1  # never sent: httpx could not build it
            outcome.failure, outcome.invalid = exc, True
        else:
            # A 304 is the answer to the caller's own conditional request
            # (If-None-Match: GitHub does not count it against the quota), not
            # an error: returned as it is, unless the error map names it.
            outcome.not_modified = response.status_code == 304 and 304 not in api._status_errors
            if not outcome.succeeded:
                outcome.retryable = outcome.throttled or retryable_status(
                    response.status_code, method, options.retry_statuses, options.retry_on
                )
        return outcome

    async def _succeed(self, outcome: _Outcome) -> Any:
        """The call's answer: a success (or a 304), checked and converted."""
        api, response, options = self._api, outcome.response, outcome.options
        assert response is not None
        api._counters.successes += 1
        api._budget.on_success(trio.current_time())
        if self._history:
            response.extensions["trestfly.retry_history"] = tuple(self._history)
        if outcome.not_modified:
            return response  # no body: nothing for the 2xx error check
        checked = await api._resp_error_check(response, **self._kwargs)
        if not isinstance(checked, httpx.Response):
            # RESTfly's classic slip, an override that only raises and
            # forgets `return response`: a bare AttributeError later.
            raise errors.UnexpectedValueError(
                f"{type(api).__name__}._resp_error_check() must return "
                f"the response, got a {type(checked).__name__}"
            )
        if self._method == "HEAD":
            return checked  # no body to convert: the headers are the answer
        return convert_response(
            checked,
            box=options.box,
            box_attrs=options.box_attrs,
            conv_json=options.conv_json,
            show_url=options.shown_url,
            restricted_paths=options.restricted_paths,
            redact_fields=options.redact_fields,
            redact_value=options.redact_value,
        )

    def _decide(self, outcome: _Outcome, counted: bool) -> Decision:
        """Whether (and after how long) a failed attempt is tried again."""
        api = self._api
        retries_done = self._retries_done
        decision = decide(
            retryable=outcome.retryable,
            retries_done=retries_done - self._uncounted if counted else 0,
            max_retries=api._retries,
            hint=outcome.hint,
            backoff=api._backoff,
            max_retry_after=api._max_retry_after,
            time_left=trio.current_effective_deadline() - trio.current_time(),
            max_backoff=api._max_backoff,
            draw=api._rng.random(),
        )
        # The budget is for failures the server gave no guidance on: a throttle, a
        # hint that closes the gate (on a 503) or a closed gate is guidance, and the
        # gate paces those.  A hint of zero is none (see decide), and a hint on a 502
        # or a 504 closes no gate: it is the call's own wait and nothing paces the
        # crowd, so the budget counts those retries (a gateway outage with
        # `Retry-After: 1` got every call's every retry, in waves of all of them).
        response = outcome.response
        guided = outcome.guided = (
            outcome.throttled
            or (
                response is not None
                and closes_gate(response.status_code, outcome.hint, throttled=False)
            )
            or outcome.gate.throttle.gate_until > trio.current_time()
        )
        kwargs = self._kwargs
        body = (kwargs.get("content"), kwargs.get("data"))
        files = kwargs.get("files")
        if decision.retry and not can_send_again(
            *body, outcome.failure, files, answered=outcome.answered
        ):
            decision = Decision(decision.delay, StopReason.STREAMED_BODY)
        if (
            decision.retry
            and response is not None
            and processed_before_redirect(self._method, response)
        ):
            decision = Decision(decision.delay, StopReason.PROCESSED)
        if decision.retry and not guided and not self._budget_allows():
            decision = Decision(decision.delay, StopReason.BUDGET)
        return decision

    async def _retry_or_raise(self, outcome: _Outcome) -> None:
        """Raise the call's error, or wait for the next attempt and take its keywords."""
        api, options, response, failure = (
            self._api,
            outcome.options,
            outcome.response,
            outcome.failure,
        )
        counted = counts_against_retries(
            throttled=outcome.throttled,
            stale=outcome.stale,
            uncounted=self._uncounted,
            max_retries=api._retries,
        )
        decision = self._decide(outcome, counted)
        stop = decision.stop
        if stop is not None:
            api._counters.failures += 1
            if response is not None:
                raise response_error(
                    response,
                    api._status_errors,
                    options,
                    self._retries_done,
                    outcome.hint,
                    self._history,
                    stop,
                )
            assert failure is not None
            raise transport_failure(
                self._method, outcome.url, options, self._retries_done, stop, failure, self._history
            )

        # While its latest retry is one the server gave no guidance on, the call is one
        # of those failing together that the budget is for (see _budget_allows); once
        # it waits out a throttle or a Retry-After it is not (it counted to its end, and
        # a lone 503 elsewhere was refused as one of many while it waited).
        self._set_unguided(not outcome.guided)
        self._retries_done += 1
        if not counted:
            self._uncounted += 1
        api._counters.retries += 1
        self._history.append(
            RetryRecord(
                retry=self._retries_done,
                status=response.status_code if response is not None else None,
                error=type(failure).__name__ if failure is not None else None,
                delay=decision.delay,
                retry_after=outcome.hint,
                counted=counted,
            )
        )
        if retry_log.isEnabledFor(logging.INFO):
            log_retry(self._method, options.shown_url(outcome.url), self._history[-1], api._retries)
        status = response.status_code if response is not None else None
        if (
            status is None
            or not closes_gate(status, outcome.hint, throttled=outcome.throttled)
            or _answered_elsewhere(response, outcome.url)
        ):
            await self._backoff_sleep(outcome.gate, decision.delay)
        # else the gate is closed until the hint's instant: waited there (with its
        # probe and jitter), together with every other task.
        self._last = response if response is not None else failure
        try:
            again = await api._retry_request(response, self._retries_done, **self._kwargs)
        except Exception:
            api._counters.failures += 1  # the hook gave up on the call
            raise
        if not isinstance(again, Mapping):
            raise errors.UnexpectedValueError(
                f"{type(api).__name__}._retry_request() must return the keywords "
                f"of the next attempt (a dict), got a {type(again).__name__}"
            )
        # The first attempt's keywords went through the same (see TrioAPISession._request):
        # a hook rebuilding params={"offset": None} sent offset= empty on the retries.
        self._kwargs = drop_none_fields(read_iterators_once(dict(again)))

    async def _send_once(
        self,
        gate: OriginGate,
        url: str,
        target: str | httpx.URL,
        request_kwargs: dict[str, Any],
        redact_fields: tuple[str, ...],
    ) -> tuple[httpx.Response, float | None, bool, bool]:
        """One attempt: admission, send, and feedback to the origin's shared state.
        ``target`` is ``url`` as it is sent (parsed already when it could be cached).

        Returns the response, its delay hint, whether it is a throttle, and whether the
        attempt was sent before the origin's current throttling episode began (stale).
        """
        api = self._api
        # Admission takes the session's slot too, last (see OriginGate.admit).
        while True:
            try:
                admitted: Admitted = await gate.admit(
                    max_wait=api._max_retry_after, session=api._limiter
                )
                break
            except SessionLeft:
                # The block ended while this attempt waited: "not open", unless it was
                # entered again meanwhile (then the attempt waits its turn again).
                api._session  # noqa: B018
        try:
            try:
                assert admitted.ticket is not None
                # Read again: the block may have ended (or been entered again) while the
                # attempt waited for a pacer slot, at a gate or for the store, and the
                # client it was given is closed (httpx's bare RuntimeError said so).
                session = self._client = api._session
                if session.is_closed:
                    # Closed by its owner while the session is open: httpx's bare
                    # RuntimeError said "Cannot send a request" and nothing more.
                    api._counters.failures += 1
                    raise closed_while_open(api, session)
                api._counters.attempts += 1
                # A fresh extensions dict per attempt: redirects share it (see
                # drop_credentials_off_origin), the caller's is not written to.
                extensions = dict(request_kwargs.get("extensions") or {})
                # See failed_after_an_answer, and _attempt for errors with no request.
                extensions[CALL_REQUEST] = self._mark = CallMark()
                if redact_fields:
                    extensions[REDACT_FIELDS] = redact_fields
                try:
                    response = await session.request(
                        self._method, target, **{**request_kwargs, "extensions": extensions}
                    )
                except httpx.TransportError:
                    gate.throttle.on_transport_failure(admitted.ticket)
                    raise
            finally:
                api._limiter.release_on_behalf_of(admitted)
            status = response.status_code
            api._counters.by_status[status] += 1
            retry_after, has_quota = scan_headers(response.headers.raw)
            announced = quota = None
            wall_now = gate.wall_clock(response) if retry_after or has_quota else 0.0
            if retry_after:
                announced = parse_retry_after_fields(retry_after, wall_now)
                if announced is None and not gate.unread_hint_told:
                    gate.unread_hint_told = True
                    log_unread_retry_after(origin_of(response.request.url), status, retry_after)
            if has_quota:
                quota = parse_quota(response.headers, wall_now)
            # A Retry-After makes a 403 a throttle, a zero one too; but a delay of zero
            # (or a date already past) paces nothing: every decision below takes it as
            # no hint (see decide, closes_gate).
            throttled = is_throttle(status, announced, quota)
            hint = announced or None
            if throttled and quota is not None:
                # GitHub's spent primary quota: the reset is the announced delay, for
                # max_retry_after, the deadline and the error's retry_after alike; the
                # longer of it and a Retry-After beside it, as of two Retry-After fields
                # (both were said: after a Retry-After of 1 the quota was still spent for
                # 9 s more, and the call spent its retries on it).  A reset already due
                # (clocks apart) says nothing: back off as usual.
                reset = spent_quota_delay(quota)
                if reset is not None and (hint is None or reset > hint):
                    hint = reset
            trips = gate.throttle.gate_trips
            stale = gate.throttle.is_stale(admitted.ticket)  # before the response moves it
            # Kept for stats read after trio.run returned (one assignment per attempt).
            now = api._last_seen = trio.current_time()
            # What this origin is told: the answer, with its hint (a 403 is judged by it,
            # zero included) -- unless a redirect took the call to another origin whose
            # answer throttles: that closes the other origin's gate, and this one only
            # answered the redirect (its gate closed for another's 429, and the other's
            # stayed open to direct calls).
            told_status, told_hint, told_quota = status, announced if hint is None else hint, quota
            if response.history and (throttled or hint is not None or quota is not None):
                target = origin_of(response.request.url)
                if target != origin_of(url):
                    self._close_redirect_target(target, response, hint, throttled, redact_fields)
                    told_status, told_hint, told_quota = response.history[0].status_code, None, None
            gate.throttle.on_response(
                admitted.ticket,
                now,
                status=told_status,
                hint=told_hint,
                quota=told_quota,
                hint_at=response.extensions.get(HINT_AT),
            )
            if (
                gate.throttle.gate_trips != trips
                or (told_hint is not None and told_status >= 400)
                # A success that spent the quota: the gate closes at the next admission
                # (see OriginThrottle.admit), and a call refused there quotes this
                # answer (TooManyRequestsError, retry_after the reset), not a timeout.
                or (told_quota is not None and told_quota.remaining <= 0)
            ):
                gate.closing_response, gate.closing_fields = response, redact_fields
            elif (
                gate.closing_response is not None
                and 200 <= status < 300
                and gate.throttle.gate_until <= now
                and not gate.throttle.quota_spent(now)
            ):
                # The gate is open again and serving: the answer that closed it is
                # quoted no more, and kept it held its body and its request's upload
                # (a 5 MB POST) for as long as the origin was known.
                gate.closing_response, gate.closing_fields = None, ()
            if gate.link is not None:
                gate.link.notice()
            return response, hint, throttled, stale
        finally:
            gate.release(admitted)

    def _close_redirect_target(
        self,
        origin: str,
        response: httpx.Response,
        hint: float | None,
        throttled: bool,
        redact_fields: tuple[str, ...],
    ) -> None:
        """A redirect's target (``origin``) answered with a throttle or a delay: the
        throttle is counted there, and a delay closes its gate until then, quoting the
        answer to the calls it refuses (see TrioAPISession._on_response_headers)."""
        target = self._api._gate_for(origin)
        now = trio.current_time()
        until = None
        if hint is not None and closes_gate(response.status_code, hint, throttled=throttled):
            until = min(now, response.extensions.get(HINT_AT, now)) + hint
            target.closing_response, target.closing_fields = response, redact_fields
        target.throttle.on_redirected_answer(now, until, throttled=throttled)
        if target.link is not None:
            target.link.notice()

    @trio.lowlevel.enable_ki_protection
    def _set_unguided(self, unguided: bool) -> None:
        """Whether the call counts among the session's calls retrying unguided
        failures.  The flag and the session's count change together, safe from Ctrl-C:
        a KeyboardInterrupt between them left the count off by one, and at -1 no
        failure was ever alone again."""
        if unguided != self._unguided:
            self._unguided = unguided
            self._api._retrying_unguided += 1 if unguided else -1

    def _budget_allows(self) -> bool:
        """Whether the retry budget lets an unguided retry go.  One call failing alone
        always may; "alone" counts only the other calls retrying failures the server
        gave no guidance on.  Counted with every call that had retried at all, one
        waiting out another origin's 429 (which draws nothing on the budget) made a
        lone 503 after an outage one of many, and it was not retried."""
        api = self._api
        now = trio.current_time()
        others = api._retrying_unguided - (1 if self._unguided else 0)
        return api._budget.try_spend(now, retrying_alone=others <= 0)

    def _with_user_agent(self, url: str, options: CallOptions, headers: Any) -> httpx.Headers:
        """The call's headers over the session's User-Agent (for a ``session=`` client)."""
        merged = httpx.Headers(self._api._per_request_headers)
        try:
            merged.update(headers)
        except (TypeError, ValueError, AttributeError) as exc:
            failure = exc
        else:
            return merged
        # Raised out of the except block: the failure may quote a header value.
        raise invalid_request(self._method, url, options, failure, "headers")

    async def _backoff_sleep(self, gate: OriginGate, delay: float) -> None:
        # A delay the origin's gate covers whole is waited at the gate, with every other
        # task.  One it covers in part is slept here in full: a 502's Retry-After of 10 s
        # went after 1 s when another call's 429 had closed the gate for 1 s.
        if gate.throttle.gate_until >= trio.current_time() + delay:
            return
        counters = self._api._counters
        counters.sleeps += 1
        counters.sleep_seconds += delay
        wake_at = trio.current_time() + delay
        while True:
            try:
                # Ended by the block's end like a wait at the gate: a 502's Retry-After
                # of 300 s was slept whole after the session was closed, then the
                # retry hook ran on it, and only then did the call fail.
                with gate._unless_left():
                    await trio.sleep_until(wake_at)
                return
            except SessionLeft:
                # "Not open" at once, unless it was entered again meanwhile: then the
                # backoff goes on to its end.
                self._api._session  # noqa: B018


def _answered_elsewhere(response: httpx.Response | None, url: str) -> bool:
    """Whether a redirect took the call to another origin than ``url``'s, which gave
    this answer: its delay closed that origin's gate, not the one the retry waits at
    (left unslept, three retries of a 302 to a CDN's 429 went in the same instant)."""
    return (
        response is not None
        and bool(response.history)
        and origin_of(response.request.url) != origin_of(url)
    )


def closed_while_open(
    api: TrioAPISession, client: httpx.AsyncClient, *, cut_off: str | None = None
) -> errors.TrestflyError:
    """The error of a call whose client was closed while the session is open: by code
    other than trestfly's, which only closes its clients when the block ends.
    ``cut_off``: the call (method and URL) the closing cut off while it was out."""
    why = (
        "the session= client was closed while the session is open: it must stay open "
        "while the session is"
        if client is api._injected_session
        else "the session's httpx client was closed while the session is open, by code "
        "other than trestfly's"
    )
    if cut_off is not None:
        why = f"{cut_off}: cut off ({why}); the server may have received it"
    return errors.TrestflyError(why)
