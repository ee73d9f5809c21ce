"""Reporting shared by the benchmarks: a text table, the environment, a JSON file.

``rich`` draws the table when it is importable; it is never required, and the plain
table carries the same numbers.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ._cli import UsageError

_PACKAGES = ("trestfly", "httpx", "httpcore", "trio", "uvicorn", "httptools", "stamina", "tenacity")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain monospace table: first column left-aligned, the others right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    try:
        from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
        from rich.table import Table  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print(f"\n{title}\n{render_table(headers, rows)}", flush=True)
        return
    table = Table(title=title)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = Console()
    # Off a terminal (a pipe, CI logs) rich assumes 80 columns and would cut headers to
    # "trest…": widen to what the table needs (cells, plus 3 per column for borders).
    plain_width = max(len(line) for line in render_table(headers, rows).splitlines())
    needed = plain_width + 3 * len(headers) + 1
    if console.width < needed:
        console = Console(width=needed)
    console.print(table)


def environment() -> dict[str, Any]:
    """What a result depends on besides the code: interpreter, packages, machine."""
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        # Another busy process on a small machine skews wall times: keep the evidence.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": versions,
    }


def check_out_dir(out_dir: Path, names: Iterable[str] = ()) -> None:
    """Create ``out_dir`` and make sure a file can be written in it, and that each of
    ``names`` (the files the run will write there) is free or a regular file.

    Called before the benchmark starts: the results are written only at the end, and an
    ``--out`` that cannot take them (a path under a regular file, a read-only place, a
    directory named ``results.json``) would otherwise lose a whole run.

    Raises:
        UsageError: naming ``--out`` and what is wrong with it.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out_dir}: cannot create it ({error.strerror})") from None
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise UsageError(f"--out {out_dir}: cannot write in it ({error.strerror})") from None
    # A directory (or a socket, ...) of an output's name made write_json's rename fail,
    # after every measurement; its ".partial" is written first, so it is checked too.
    for name in names:
        for taken in (name, _partial_name(name)) if name.endswith(".json") else (name,):
            path = out_dir / taken
            if path.exists() and not path.is_file():
                raise UsageError(f"--out {out_dir}: {taken} exists and is not a regular file")


def _partial_name(name: str) -> str:
    """The name :func:`write_json` writes ``name`` under before renaming it."""
    return name + ".partial"


def write_json(out_dir: Path, name: str, data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``out_dir/name`` (creating the directory); return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    # Written whole then renamed: a reader (CI, a dashboard) never sees half a file.
    partial = path.with_name(_partial_name(path.name))
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
