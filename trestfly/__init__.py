"""trestfly: write API clients (SDKs) on Trio.

The RESTfly model (a session class with a base URL, an error map and retry rules;
endpoints and iterators grafted onto it) with structured concurrency.

Public names: :class:`TrioAPISession`, :class:`APIEndpoint`, :class:`APIIterator` and
``__version__``; the modules :mod:`trestfly.errors` and :mod:`trestfly.utils`.
"""

from . import errors, utils
from ._endpoint import APIEndpoint
from ._iterator import APIIterator
from ._session import TrioAPISession
from ._version import __version__

__all__ = ["APIEndpoint", "APIIterator", "TrioAPISession", "__version__", "errors", "utils"]
