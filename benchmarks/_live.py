"""Live progress for the benchmarks: rich bars on a terminal, plain lines elsewhere.

::

    display = open_display()                  # rich when stdout is a terminal
    with display.section("fixed_window: limit 200/s"):
        run = display.start("c=10  trestfly", total=1000)
        run.update(completed=420, status="goodput 0.97")   # as often as you like
        run.finish(completed=1000, status="4.21 s, goodput 0.98")

Nothing here refreshes on its own: no thread, no timer.  The benchmarks measure the
client's CPU time with ``time.process_time()``, which counts every thread of the
process, so a display thread repainting ten times a second would be billed to whichever
client is running.  The caller decides when to repaint (``update``) and measures what
that costs.  Off a terminal, or without rich, the display prints one line per finished
run and a heartbeat line for runs longer than :data:`HEARTBEAT_SECONDS`, which keeps CI
logs short and shows a stuck run.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["HEARTBEAT_SECONDS", "Display", "RunProgress", "open_display"]

#: Plain mode: seconds between two progress lines of one run.
HEARTBEAT_SECONDS = 10.0


class RunProgress(ABC):
    """The progress of one run (one client in one scenario at one concurrency)."""

    @abstractmethod
    def update(self, completed: int, status: str) -> None:
        """``completed`` of the run's total are done; ``status`` is a short text."""

    @abstractmethod
    def finish(self, completed: int, status: str) -> None:
        """The run is over; ``status`` summarises it."""


class Display(ABC):
    @abstractmethod
    def section(self, title: str) -> Any:
        """A context manager grouping the runs of one scenario (or table)."""

    @abstractmethod
    def start(self, label: str, total: int) -> RunProgress:
        """A new run inside the current section."""

    @abstractmethod
    def note(self, text: str) -> None:
        """A line of text (kept above the live bars on a terminal)."""


# ------------------------------------------------------------------ plain lines


class _PlainRun(RunProgress):
    def __init__(self, label: str, total: int) -> None:
        self._label = label
        self._total = total
        self._next_line = time.monotonic() + HEARTBEAT_SECONDS

    def update(self, completed: int, status: str) -> None:
        now = time.monotonic()
        if now >= self._next_line:
            self._next_line = now + HEARTBEAT_SECONDS
            print(f"    {self._label}  {completed}/{self._total}  {status} ...", flush=True)

    def finish(self, completed: int, status: str) -> None:
        print(f"  {self._label}  {completed}/{self._total}  {status}", flush=True)


class PlainDisplay(Display):
    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        print(title, flush=True)
        yield

    def start(self, label: str, total: int) -> RunProgress:
        return _PlainRun(label, total)

    def note(self, text: str) -> None:
        print(text, flush=True)


# ------------------------------------------------------------------ rich bars


class _RichRun(RunProgress):
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress = progress
        self._task = task

    def update(self, completed: int, status: str) -> None:
        self._progress.update(self._task, completed=completed, status=status)
        self._progress.refresh()

    def finish(self, completed: int, status: str) -> None:
        # The bar stays on screen after the section ends: the scroll-back is a record.
        self._progress.update(self._task, completed=completed, status=status)
        self._progress.stop_task(self._task)
        self._progress.refresh()


class RichDisplay(Display):
    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self._progress: Any = None

    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # Escaped: a --url's "filter[status]=open" is not markup (a "[/a,/z]" crashed).
        self.console.print(f"[bold]{escape(title)}[/bold]")
        progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            # No refresh thread (module docstring): the harness calls refresh().
            auto_refresh=False,
        )
        self._progress = progress
        progress.start()
        try:
            yield
        finally:
            progress.stop()
            self._progress = None

    def start(self, label: str, total: int) -> RunProgress:
        if self._progress is None:
            raise RuntimeError("start() outside a section()")
        task = self._progress.add_task(label, total=total, status="")
        self._progress.refresh()
        return _RichRun(self._progress, task)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)


def open_display(*, plain: bool = False) -> Display:
    """Rich bars when stdout is a terminal and rich is importable (and not ``plain``)."""
    if plain or not sys.stdout.isatty():
        return PlainDisplay()
    try:
        import rich  # noqa: F401  (only probing that it is installed)
    except ImportError:
        return PlainDisplay()
    return RichDisplay()
