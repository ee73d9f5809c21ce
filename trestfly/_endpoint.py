"""APIEndpoint: a group of related calls under one path, grafted onto a session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Unpack

from ._options import box_options
from ._urls import check_not_other_scheme, is_absolute, join_path
from .errors import RequiredParameterError, UnexpectedValueError

if TYPE_CHECKING:
    import httpx

    from ._options import RequestOptions
    from ._session import TrioAPISession


class APIEndpoint:
    """A set of calls sharing a path prefix and conversion settings.

    Args:
        api: the session the endpoint sends through (kept as ``self._api``).

    ``_box``, ``_box_attrs`` and ``_conv_json`` default to None, meaning "inherit the
    session's setting"; a call's own keyword always wins.  SDK authors attach endpoints to
    their session class::

        class UsersAPI(APIEndpoint):
            _path = "users"

            async def details(self, user_id: int) -> Any:
                return await self._get(str(user_id), box=True)

        class MyAPI(TrioAPISession):
            @property
            def users(self) -> UsersAPI:
                return UsersAPI(self)

    .. versionadded:: 0.1.0
    """

    #: The path prefix of the endpoint's calls, joined after the session's base path.
    _path: str | None = None
    #: Return JSON as Box/BoxList for the endpoint's calls (None: the session's setting).
    _box: bool | None = None
    #: Keyword arguments of every Box built (None: the session's setting).
    _box_attrs: Mapping[str, Any] | None = None
    #: Return JSON as plain dicts/lists (None: the session's setting).
    _conv_json: bool | None = None

    def __init__(self, api: TrioAPISession) -> None:
        from ._session import TrioAPISession  # imported late: the session module is larger

        if not isinstance(api, TrioAPISession):
            # Else the first call failed far from here: None gave a bare AttributeError,
            # and the session class itself (not an instance) a TypeError about `path`.
            what = (
                f"the class {api.__name__}" if isinstance(api, type) else f"a {type(api).__name__}"
            )
            raise UnexpectedValueError(
                f"{type(self).__name__} must be built on a TrioAPISession instance (pass "
                f"the session, e.g. {type(self).__name__}(self) in a property), got {what}"
            )
        self._api = api

    def _endpoint_path(self, path: str | None) -> str:
        if path is not None and not isinstance(path, str):
            raise UnexpectedValueError(
                f"path must be a string (e.g. 'users/1'), got a {type(path).__name__}"
            )
        if path is not None and is_absolute(path):
            return path
        if self._path is None and path is None:
            raise RequiredParameterError(
                f"{type(self).__name__} has no _path and the call gave no path"
            )
        if self._path is not None and not isinstance(self._path, str):
            raise UnexpectedValueError(
                f"{type(self).__name__}._path must be a string, got a {type(self._path).__name__}"
            )
        if path is not None:
            # A URL of another scheme, refused as the session refuses it: joined after
            # _path first, it went out as https://api.example.com/files/ftp://host/x.
            check_not_other_scheme(path)
        if self._path is None or path is None:
            return join_path(self._path or path or "")
        if path[:1] in ("", "?", "#"):
            # No path of its own ("" or a query alone): _path itself, as RESTfly sent it.
            # Joined as a segment, "items/" lost its trailing slash (/items and /items/
            # are often routed apart), and params written in the path moved after it.
            if path and ("?" in self._path or "#" in self._path):
                raise UnexpectedValueError(
                    f"{type(self).__name__}._path has a query or a fragment, so the call's "
                    f"query {path.partition('?')[0] or '?...'} cannot follow it: give the "
                    "query per call, with params="
                )
            return self._path + path
        if "?" in self._path or "#" in self._path:
            # "users?active=1" + "42" sent GET /users?active=1/42: the path went into the
            # query, to another resource.
            raise UnexpectedValueError(
                f"{type(self).__name__}._path has a query or a fragment, so a path cannot be "
                "joined after it: give the query per call, with params="
            )
        return join_path(self._path, path)

    async def _req(
        self, method: str, path: str | None = None, **kwargs: Unpack[RequestOptions]
    ) -> Any:
        """Send a request to ``_path/path`` through the session.

        Args:
            method: the HTTP method.
            path: joined after ``_path`` with one slash; None sends to ``_path`` itself;
                an absolute ``http(s)://`` URL is used as it is.
            kwargs: what :meth:`trestfly.TrioAPISession._request` takes; the endpoint's
                ``_box``, ``_box_attrs`` and ``_conv_json`` fill in the options the call
                does not give.

        Returns:
            What :meth:`trestfly.TrioAPISession._request` returns.

        Raises:
            RequiredParameterError: neither ``_path`` nor ``path`` was given.

        .. versionadded:: 0.1.0
        """
        given: dict[str, Any] = {**kwargs}
        for option, value in (
            ("box", self._box),
            ("box_attrs", self._box_attrs),
            ("conv_json", self._conv_json),
        ):
            if value is not None:
                if option != "box_attrs" and not isinstance(value, bool):
                    # Named here: the call's own box= would otherwise take the blame.
                    raise UnexpectedValueError(
                        f"{type(self).__name__}._{option} must be True, False or None, "
                        f"got {value!r}"
                    )
                # A call's None means "not given", as for the session's own options:
                # an SDK method passing box=None through must still get the endpoint's.
                if given.get(option) is None:
                    if option == "box_attrs":
                        self._check_box_attrs(value)
                    given[option] = value
        return await self._api._request(method, self._endpoint_path(path), **given)

    def _check_box_attrs(self, value: object) -> None:
        """Name the endpoint's ``_box_attrs`` when they are wrong: checked as the call's
        own, the message blamed a ``box_attrs`` the call never passed."""
        try:
            box_options(value)
        except UnexpectedValueError as exc:
            failure = exc
        else:
            return
        raise UnexpectedValueError(f"{type(self).__name__}._box_attrs: {failure}")

    async def _get(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a GET request to ``_path/path`` (see :meth:`_req`).

        .. versionadded:: 0.1.0
        """
        return await self._req("GET", path, **kwargs)

    async def _post(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a POST request to ``_path/path`` (see :meth:`_req`).

        .. versionadded:: 0.1.0
        """
        return await self._req("POST", path, **kwargs)

    async def _put(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a PUT request to ``_path/path`` (see :meth:`_req`).

        .. versionadded:: 0.1.0
        """
        return await self._req("PUT", path, **kwargs)

    async def _patch(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a PATCH request to ``_path/path`` (see :meth:`_req`).

        .. versionadded:: 0.1.0
        """
        return await self._req("PATCH", path, **kwargs)

    async def _delete(self, path: str | None = None, **kwargs: Unpack[RequestOptions]) -> Any:
        """Send a DELETE request to ``_path/path`` (see :meth:`_req`).

        .. versionadded:: 0.1.0
        """
        return await self._req("DELETE", path, **kwargs)

    async def _head(
        self, path: str | None = None, **kwargs: Unpack[RequestOptions]
    ) -> httpx.Response:
        """Send a HEAD request to ``_path/path`` (see :meth:`_req`): always the
        ``httpx.Response``.

        .. versionadded:: 0.1.0
        """
        response: httpx.Response = await self._req("HEAD", path, **kwargs)
        return response
