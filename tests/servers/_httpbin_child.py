"""Subprocess entry point: serve ``httpbin.app`` on a listening socket inherited by fd.

Run by :mod:`httpbin_server` as ``python -P _httpbin_child.py FD``; it is a script, not
imported by the tests.  The parent binds the socket before starting us, so the port is
known up front and there is no window in which another process could take it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading


def _exit_when_parent_goes() -> None:
    # The parent holds our stdin open for our whole intended lifetime.  EOF means it
    # closed it or died (even by SIGKILL), so we never outlive the test session.
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    fd = int(sys.argv[1])
    # Per-request access lines would only bloat the log that the parent shows when
    # startup fails; warnings and errors (e.g. app tracebacks) are kept.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Imported here, after logging is set up.  httpbin logs one warning at import when
    # flasgger is absent (only / and /spec.json lose the Swagger UI); that is harmless.
    import httpbin  # type: ignore[import-untyped]  # ships no type information
    from werkzeug.serving import make_server

    # threaded=True: clients under test send concurrent requests, and Werkzeug then
    # also speaks HTTP/1.1 keep-alive.  fd= reuses the parent's bound socket.
    server = make_server("127.0.0.1", 0, httpbin.app, threaded=True, fd=fd)
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    print(f"httpbin serving on http://127.0.0.1:{server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
