"""Progress bars for crawls with `rich <https://rich.readthedocs.io>`_.

Needs the ``rich`` extra (``pip install 'trestfly[rich]'``); rich is imported when a
:class:`RichProgress` is made, never by ``import trestfly``.  One bar per iterator::

    from trestfly.contrib.rich import RichProgress

    with RichProgress() as bars:
        users = Users(api, progress=bars.track("users"))
        groups = Groups(api, progress=bars.track("groups"))
        async with crawl_many({"users": users, "groups": groups}) as records:
            async for source, record in records:
                ...

A bar shows records out of the expected total (a spinner-like bar while the total is
unknown), pages, and the rate in records per second.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .._paginators import CrawlProgress, ProgressCallback

if TYPE_CHECKING:
    # rich is optional: without it, type checkers see Any here.
    from rich.progress import Progress  # type: ignore[import-not-found, unused-ignore]

__all__ = ["RichProgress"]


def _rich_progress_module() -> Any:
    try:
        import rich.progress  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ImportError("trestfly.contrib.rich needs rich: pip install 'trestfly[rich]'") from exc
    return rich.progress


class RichProgress:
    """A ``rich.progress.Progress`` with one bar per crawl, fed by progress callbacks.

    Use it as a context manager (it starts and stops the display it made), and hand
    :meth:`track` to each iterator as ``progress=``.  Callbacks run in the consumer's
    task, once per page, so the display costs nothing per record.

    Args:
        progress: an existing ``rich.progress.Progress`` to add bars to (you start and
            stop it); by default a new one with the columns described above.
        console: the ``rich.console.Console`` of the new display (default: stdout).
        transient: clear the new display when it stops.

    Raises:
        ImportError: rich is not installed.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, progress: Progress | None = None, *, console: Any = None, transient: bool = False
    ) -> None:
        module = _rich_progress_module()
        self._owned = progress is None
        if progress is None:
            progress = module.Progress(
                # Not markup: a label shows as given ("groups[/]", "C:\\exports\\",
                # "deploy:rocket:").
                module.TextColumn("{task.description}", markup=False),
                module.BarColumn(),
                module.MofNCompleteColumn(),
                module.TextColumn("{task.fields[pages]} pages"),
                module.TextColumn("{task.fields[rate]:,.0f} records/s"),
                module.TimeElapsedColumn(),
                console=console,
                transient=transient,
            )
        self._progress = progress

    @property
    def progress(self) -> Progress:
        """The underlying ``rich.progress.Progress``.

        .. versionadded:: 0.1.0
        """
        return self._progress

    def track(self, description: str) -> ProgressCallback:
        """Add a bar and return the callback that moves it (pass it as ``progress=``).

        Args:
            description: the bar's label, shown as given (escaped as rich markup for a
                display given as ``progress=``).

        .. versionadded:: 0.1.0
        """
        label = description
        if not self._owned:
            # A display given as progress= most likely reads descriptions as markup
            # (rich's default), where a source key such as "groups[/]" crashed it
            # (MarkupError) and "team[admin]" lost its brackets: escaped for it.
            from rich.markup import escape  # type: ignore[import-not-found, unused-ignore]

            label = escape(description)
        task = self._progress.add_task(label, total=None, pages=0, rate=0.0)

        def update(report: CrawlProgress) -> None:
            self._progress.update(
                task,
                completed=report.records,
                total=report.total,
                pages=report.pages,
                rate=report.rate,
            )

        return update

    def __enter__(self) -> Self:
        if self._owned:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._owned:
            self._progress.stop()
