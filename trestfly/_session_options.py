"""SessionOptions: the constructor's keywords as a TypedDict, for SDK constructors that
pass them through (``**kwargs: Unpack[SessionOptions]``) without erasing their types."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypedDict

import httpx

from . import errors
from ._budget import BudgetSettings
from ._client import CertTypes, ProxiesTypes, TimeoutTypes, VerifyTypes
from ._coordination import Coordination
from ._throttle import ThrottleSettings


class SessionOptions(TypedDict, total=False):
    """The keywords :class:`~trestfly.TrioAPISession` takes, for type checkers: an SDK
    constructor that passes them on keeps them checked, where ``**kwargs: Any`` let a
    misspelt one (``tokn=``) or one of the wrong kind (``retries="3"``) through::

        class AcmeAPI(TrioAPISession):
            def __init__(
                self, *, token: str | None = None, **kwargs: Unpack[SessionOptions]
            ) -> None:
                super().__init__(token=token, **kwargs)

    It holds the session's own keywords only: the keywords an ``_authenticate`` or
    ``_build_session`` override takes are the SDK's to name (``token`` above).  All but
    ``url``, which SDK constructors usually take as a parameter of their own (a type
    checker refuses a parameter named as an item of the ``**`` TypedDict): take it,
    and pass it on as ``url=``.

    .. versionadded:: 0.1.0
    """

    base_path: str | None
    retries: int | None
    backoff: float | None
    max_backoff: float | None
    box: bool | None
    box_attrs: Mapping[str, Any] | None
    conv_json: bool | None
    ssl_verify: VerifyTypes | None
    cert: CertTypes | None
    proxies: ProxiesTypes | None
    timeout: TimeoutTypes
    vendor: str | None
    product: str | None
    build: str | None
    lib_name: str | None
    lib_version: str | None
    restricted_paths: Collection[str] | None
    error_map: Mapping[int, type[errors.APIError]] | None
    base_error_map: Mapping[int, type[errors.APIError]] | None
    retry_statuses: Collection[int] | None
    retry_on: Collection[int] | None
    error_on_unexpected_input: bool | None
    max_retry_after: float | None
    max_concurrency: int | None
    http2: bool | None
    rate_limit: float | None
    burst: int | None
    adaptive: bool | None
    throttle: ThrottleSettings | None
    retry_budget: BudgetSettings | None
    coordination: Coordination | None
    session: httpx.AsyncClient | None
    transport: httpx.AsyncBaseTransport | None
    follow_redirects: bool | None
