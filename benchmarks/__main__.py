"""``python -m benchmarks [COMMAND] [OPTIONS]``: run one benchmark against a local server.

Each benchmark is a :class:`Command`: a module with ``add_arguments(parser)`` and
``run(args) -> exit code``.  Adding one is one entry in :data:`COMMANDS`; which runs
without a command is :data:`DEFAULT_COMMAND`.  Options given without a command belong to
the default command (``python -m benchmarks --quick``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import crawl, overhead, storm


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


COMMANDS: tuple[Command, ...] = (
    Command(
        name="storm",
        summary="429 storms: trestfly against peer retry strategies on a throttling server",
        description=storm.__doc__,
        add_arguments=storm.add_arguments,
        run=storm.run,
    ),
    Command(
        name="crawl",
        summary="paginated crawls: sequential iterator against concurrent prefetch",
        description=crawl.__doc__,
        add_arguments=crawl.add_arguments,
        run=crawl.run,
    ),
    Command(
        name="overhead",
        summary="per-request cost of TrioAPISession over a bare httpx.AsyncClient",
        description=overhead.__doc__,
        add_arguments=overhead.add_arguments,
        run=overhead.run,
    ),
)
DEFAULT_COMMAND = "storm"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of trestfly against a local uvicorn server on 127.0.0.1.",
        epilog=f"Without a command, runs '{DEFAULT_COMMAND}' (options go to it). "
        "'python -m benchmarks COMMAND --help' describes a command.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=command.description or command.summary,
            # Keep the line breaks of module docstrings used as descriptions.
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def _with_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with the default command put first when it names none."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        return [DEFAULT_COMMAND, *argv]
    return list(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_with_command(sys.argv[1:] if argv is None else argv))
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except* KeyboardInterrupt:
        # except*: Trio delivers Ctrl-C inside a nursery's exception group.  The server
        # was already stopped by its context manager on the way out.
        print("interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
