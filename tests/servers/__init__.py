"""Test servers for end-to-end tests of HTTP clients.

* :mod:`.trio_server` -- the project's own scriptable HTTP/1.1 server on Trio + h11,
  run inside the test's Trio loop (fixture ``trio_server``).
* :mod:`.script` -- what it answers: actions, scripts, recorded requests.
* :mod:`.httpbin_server` -- the ``httpbin`` app in a subprocess (fixture ``httpbin_url``).
"""

from .httpbin_server import run_httpbin
from .script import (
    Action,
    Disconnect,
    Handler,
    RecordedRequest,
    Reset,
    Respond,
    ScriptedApp,
    Stall,
    Step,
    close_after_response,
    disconnect,
    json_status,
    reset,
    respond,
    stall,
)
from .trio_server import TrioTestServer, open_trio_server, serve

__all__ = [
    "Action",
    "Disconnect",
    "Handler",
    "RecordedRequest",
    "Reset",
    "Respond",
    "ScriptedApp",
    "Stall",
    "Step",
    "TrioTestServer",
    "close_after_response",
    "disconnect",
    "json_status",
    "open_trio_server",
    "reset",
    "respond",
    "run_httpbin",
    "serve",
    "stall",
]
