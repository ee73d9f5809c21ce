"""Benchmarks of trestfly against a local server: run ``python -m benchmarks --help``.

* :mod:`.overhead` -- what a ``TrioAPISession`` costs per request over a bare
  ``httpx.AsyncClient`` with the same pool.
* :mod:`.server` -- the local HTTP server they measure against (uvicorn in a subprocess).

Nothing here is part of the library or imported by it.
"""
