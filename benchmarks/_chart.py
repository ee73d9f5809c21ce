"""PNG charts of the storm benchmark: one file per scenario, written with matplotlib's Agg.

Each file has one row per concurrency:

* left, **goodput over time** per client: the successes of the trailing second, from
  the server's timeline (successes per 100 ms bucket, by arrival; the client's own
  completion times with ``--url``), divided by the scenario's limit.  1.0 is the most
  the scenario allows; scenarios without a limit (outage, flaky) show successes per
  second instead, and the outage is shaded.  A trailing window, not a centred one: a
  centred average divided by a partial window at t=0 would show a fixed window's
  opening burst at twice the limit.
* right, **rejections per success** per client: 429s, 503s and resets per success,
  stacked, with violations of announced waits written on the bar.  A log scale is used
  when the clients differ by more than :data:`LOG_SCALE_SPREAD` times.  A client that
  was rejected and never succeeded has infinitely many per success: a hatched bar to
  the top, labelled ``∞ (0/N ok)`` with its count of rejections, never a bar of 0.

No display is ever opened: the figures are built with the object API on the Agg
canvas, never through pyplot, so nothing depends on ``$DISPLAY`` or a GUI toolkit.
matplotlib is optional: without it :func:`storm_charts` returns no paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "LOG_SCALE_SPREAD",
    "SMOOTHING_SECONDS",
    "matplotlib_available",
    "storm_charts",
    "trailing_mean",
]

#: Width of the trailing window of the goodput lines: one window of the fixed-window
#: scenarios, so that a perfect client draws a flat line at 1.0.
SMOOTHING_SECONDS = 1.0
#: Above this ratio between the largest and smallest non-zero bar, the bars go log-scale.
LOG_SCALE_SPREAD = 30.0
_DPI = 110
#: One colour per client in every chart (tab10), so a client is recognisable across files.
_COLOURS = {
    "trestfly": "#1f77b4",
    "trestfly-tuned": "#17becf",
    "httpx-immediate": "#d62728",
    "httpx-retry-after": "#ff7f0e",
    "stamina": "#2ca02c",
    "tenacity": "#9467bd",
}
_FALLBACK_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401  (probing only)
    except ImportError:
        return False
    return True


def trailing_mean(values: Sequence[float], width: int) -> list[float]:
    """Mean of each point and the ``width - 1`` before it; missing points (before the
    start) count as 0, so the first second shows what really happened in it."""
    if width <= 1:
        return list(values)
    out = []
    total = 0.0
    for index, value in enumerate(values):
        total += value
        if index >= width:
            total -= values[index - width]
        out.append(total / width)
    return out


def _colour(client: str, index: int) -> str:
    return _COLOURS.get(client, _FALLBACK_COLOURS[index % len(_FALLBACK_COLOURS)])


def _series(run: Mapping[str, Any]) -> tuple[float, list[int]] | None:
    """(bucket seconds, successes per bucket): the server's timeline, else the client's."""
    timeline = run.get("timeline") or run.get("client_timeline")
    if not timeline or not timeline.get("successes"):
        return None
    return float(timeline["bucket_seconds"]), list(timeline["successes"])


def _legend(axes: Any, loc: str) -> None:
    # Only with something to show: legend() without labelled artists warns.
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small", loc=loc)


def _goodput_axes(axes: Any, runs: Sequence[Mapping[str, Any]], concurrency: int) -> None:
    limit = runs[0].get("limit_rps")
    longest = 0.0
    for index, run in enumerate(runs):
        complete = run.get("complete", True)
        series = _series(run)
        if series is not None:
            bucket, counts = series
            rates = [count / bucket for count in counts]
            smoothed = trailing_mean(rates, max(1, round(SMOOTHING_SECONDS / bucket)))
            ys = [rate / limit for rate in smoothed] if limit else smoothed
            xs = [(i + 1) * bucket for i in range(len(ys))]  # a window ends with its bucket
        elif not complete:
            # No success to draw: a line at 0 over the run, so that a client that got
            # nothing shows as such instead of missing from the chart.
            xs, ys = [0.0, float(run.get("wall_s") or 0.0)], [0.0, 0.0]
        else:
            continue
        longest = max(longest, xs[-1])
        axes.plot(
            xs,
            ys,
            color=_colour(run["client"], index),
            linewidth=2.2 if run["client"] == "trestfly" else 1.3,
            linestyle="-" if complete else ":",
            label=run["client"] + ("" if complete else " (incomplete)"),
            # An incomplete client's line is often at 0: over the axis, not under it.
            zorder=2 if complete else 3,
            clip_on=complete,
        )
    outage = runs[0].get("outage")
    if outage:
        axes.axvspan(0, outage["duration_s"], color="0.85", zorder=0, label="outage (503s)")
    if limit:
        axes.axhline(1.0, color="black", linewidth=0.8, label=f"the limit, {limit:g}/s")
        axes.axhline(0.9, color="black", linewidth=0.8, linestyle="--", label="target 0.9")
        axes.set_ylabel(f"goodput: successes in the last {SMOOTHING_SECONDS:g} s / limit")
    else:
        axes.set_ylabel(f"successes per second (last {SMOOTHING_SECONDS:g} s)")
    axes.set_ylim(bottom=0)
    axes.set_xlim(0, max(longest, 1.0))
    axes.set_xlabel("seconds since the scenario started")
    axes.set_title(f"goodput over time, concurrency {concurrency}")
    axes.grid(True, alpha=0.3)
    _legend(axes, "best")


def _ratio(run: Mapping[str, Any], key: str) -> float:
    value = run.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _rejected(run: Mapping[str, Any]) -> int:
    """429s, 503s and resets: what the per-success bars count, as a plain count."""
    keys = ("throttled_429", "unavailable_503", "resets")
    return sum(int(run.get(key) or 0) for key in keys)


def _no_success(run: Mapping[str, Any]) -> bool:
    # Per success is then undefined, which _ratio would draw as 0: the best bar.
    return run.get("successes") == 0


def _rejection_axes(axes: Any, runs: Sequence[Mapping[str, Any]], concurrency: int) -> None:
    names = [run["client"] for run in runs]
    positions = list(range(len(runs)))
    layers = (
        ("throttled_429_per_success", "429", "#d62728"),
        ("unavailable_503_per_success", "503", "#ff9896"),
        ("resets_per_success", "reset", "#7f7f7f"),
    )
    bottoms = [0.0] * len(runs)
    for key, label, colour in layers:
        heights = [_ratio(run, key) for run in runs]
        if not any(heights):
            continue
        axes.bar(positions, heights, bottom=bottoms, color=colour, label=f"{label}s per success")
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    positive = [total for total in bottoms if total > 0]
    if positive and max(positive) / min(positive) > LOG_SCALE_SPREAD:
        # symlog: zero stays plottable, and 0.01 next to 30 is still visible.
        axes.set_yscale("symlog", linthresh=0.01)
    top = max(bottoms, default=0.0)
    # Rejected and never successful: infinitely many per success, drawn to the top.
    endless = [
        position
        for position, run in zip(positions, runs, strict=True)
        if _no_success(run) and _rejected(run)
    ]
    if top == 0:
        axes.set_ylim(0, 1)
        if not endless:
            axes.text(0.5, 0.5, "no rejections", transform=axes.transAxes, ha="center")
    else:
        axes.set_ylim(0, top * (3 if axes.get_yscale() == "symlog" else 1.3))
    ceiling = axes.get_ylim()[1]
    if endless:
        axes.bar(
            endless,
            [ceiling] * len(endless),
            color="none",
            edgecolor="#d62728",
            hatch="//",
            label="no success: infinitely many per success",
        )
    for position, total, run in zip(positions, bottoms, runs, strict=True):
        at, align, box = total, "bottom", None
        if _no_success(run):
            rejected = _rejected(run)
            text = f"{'∞' if rejected else 'n/a'} (0/{run['requests']} ok)"
            if rejected:
                text += f"\n{rejected:,} rejected"
                # Half-way up its bar, on white: the legend may cover the top.
                at, align, box = ceiling / 2, "center", {"facecolor": "white", "linewidth": 0}
        else:
            text = f"{total:.3g}"
        violations = run.get("violations")
        if violations:
            text += f"\n{violations} viol."
        if not run.get("complete", True) and not _no_success(run):
            text += f"\n{run['successes']}/{run['requests']} ok"
        axes.annotate(
            text,
            (position, at),
            xytext=(0, 3 if box is None else 0),
            textcoords="offset points",
            ha="center",
            va=align,
            fontsize="x-small",
            bbox=box,
        )
    axes.set_xticks(positions, names, rotation=30, ha="right")
    # Every client's slot, with a bar or not (a client without one is labelled at 0).
    axes.set_xlim(-0.6, len(runs) - 0.4)
    axes.set_ylabel("rejections per success (lower is better)")
    axes.set_title(f"429s, 503s and resets per success, concurrency {concurrency}")
    axes.grid(True, axis="y", alpha=0.3)
    _legend(axes, "upper left")


def storm_charts(
    results: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    titles: Mapping[str, str],
    prefix: str = "storm",
) -> list[Path]:
    """One PNG per scenario in ``results`` (``<prefix>-<scenario>.png``); their paths.

    ``titles`` maps a scenario to the first line of its chart title (what it models and
    its parameters).  Returns no paths when matplotlib is missing.
    """
    if not matplotlib_available():
        return []
    import matplotlib

    matplotlib.use("Agg")  # never a GUI backend, whatever the user's matplotlibrc says
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    by_scenario: dict[str, dict[int, list[Mapping[str, Any]]]] = {}
    for run in results:
        levels = by_scenario.setdefault(run["scenario"], {})
        levels.setdefault(run["concurrency"], []).append(run)
    paths = []
    for scenario, levels in by_scenario.items():
        rows = len(levels)
        figure = Figure(figsize=(15, 4.6 * rows + 0.9), layout="constrained")
        grid = figure.add_gridspec(rows, 2, width_ratios=(2.2, 1))
        for row, (concurrency, runs) in enumerate(sorted(levels.items())):
            ordered = sorted(
                runs,
                key=lambda run: (
                    list(_COLOURS).index(run["client"])
                    if run["client"] in _COLOURS
                    else len(_COLOURS)
                ),
            )
            _goodput_axes(figure.add_subplot(grid[row, 0]), ordered, concurrency)
            _rejection_axes(figure.add_subplot(grid[row, 1]), ordered, concurrency)
        concurrencies = ", ".join(str(c) for c in sorted(levels))
        figure.suptitle(
            f"{titles.get(scenario, scenario)}\nconcurrency {concurrencies}",
            fontsize="large",
        )
        path = out_dir / f"{prefix}-{scenario}.png"
        figure.savefig(path, dpi=_DPI)
        paths.append(path)
    return paths
