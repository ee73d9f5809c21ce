"""APIEndpoint: a group of related calls under one path, grafted onto a session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._urls import is_absolute, join_path
from .errors import RequiredParameterError

if TYPE_CHECKING:
    from ._session import TrioAPISession


class APIEndpoint:
    """A set of calls sharing a path prefix and conversion settings.

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

    _path: str | None = None
    _box: bool | None = None
    _box_attrs: Mapping[str, Any] | None = None
    _conv_json: bool | None = None

    def __init__(self, api: TrioAPISession) -> None:
        self._api = api

    def _endpoint_path(self, path: str | None) -> str:
        if path is not None and is_absolute(path):
            return path
        if self._path is None and path is None:
            raise RequiredParameterError(
                f"{type(self).__name__} has no _path and the call gave no path"
            )
        return join_path(*(part for part in (self._path, path) if part is not None))

    async def _req(self, method: str, path: str | None = None, **kwargs: Any) -> Any:
        """Send a request to ``_path/path`` through the session (see ``_request``)."""
        for option, value in (
            ("box", self._box),
            ("box_attrs", self._box_attrs),
            ("conv_json", self._conv_json),
        ):
            if value is not None:
                kwargs.setdefault(option, value)
        return await self._api._request(method, self._endpoint_path(path), **kwargs)

    async def _get(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("GET", path, **kwargs)

    async def _post(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("POST", path, **kwargs)

    async def _put(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("PUT", path, **kwargs)

    async def _patch(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("PATCH", path, **kwargs)

    async def _delete(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("DELETE", path, **kwargs)

    async def _head(self, path: str | None = None, **kwargs: Any) -> Any:
        return await self._req("HEAD", path, **kwargs)
