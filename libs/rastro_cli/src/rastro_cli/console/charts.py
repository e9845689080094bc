"""KPI charts drawn on the server as SVG with matplotlib (the library ``rastro eta evaluate`` plots with).

Real plots — axes, ticks, legends — with no JavaScript chart library to vendor and keep current, and
they render the same in any browser and in a screenshot. matplotlib's global state is not thread-safe,
so charts are drawn one at a time, off the event loop, with the object API (never ``pyplot``).
"""

from __future__ import annotations

import io
import math
import threading
from typing import Any

from starlette.concurrency import run_in_threadpool

from rastro_cli.console.kpi_data import Chart

__all__ = ["render_chart", "render_chart_svg"]

_LOCK = threading.Lock()
MAX_LABELS = 16
WIDTH_IN, HEIGHT_IN = 6.0, 2.7  # two rows of two fit a 1280×800 screen


async def render_chart(chart: Chart) -> str | None:
    """The chart as an inline ``<svg>`` element; None when it has nothing to plot."""
    if chart.points == 0:
        return None
    return await run_in_threadpool(render_chart_svg, chart)


def render_chart_svg(chart: Chart) -> str:
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    # Text as <text>, not glyph paths: smaller, selectable, and no glyph ids repeated across the
    # page's several inline charts.
    with _LOCK, rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=100, layout="constrained")
        axes = figure.add_subplot()
        _plot(axes, chart)
        step = math.ceil(len(chart.x) / MAX_LABELS)  # a long axis labels every step-th tick
        labels = [_plain(x) if i % step == 0 else "" for i, x in enumerate(chart.x)]
        axes.set_xticks(range(len(chart.x)), labels, fontsize=8, rotation=30 if len(chart.x) > 8 else 0)
        axes.set_ylabel(chart.y_label, fontsize=9)
        axes.tick_params(axis="y", labelsize=8)
        axes.grid(axis="y", alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        if chart.percent:
            axes.set_ylim(0, 1.05)
            axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        else:
            axes.set_ylim(bottom=0)
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        if chart.series:  # above the plot, so it never hides a bar or a point
            axes.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def _plot(axes: Any, chart: Chart) -> None:
    """Lines with a marker per known value (a gap where there is none), or bars side by side."""
    positions = list(range(len(chart.x)))
    if chart.kind == "line":
        for name, values in chart.series.items():  # NaN breaks the line: no value is not zero
            heights = [v if v is not None else math.nan for v in values]
            axes.plot(positions, heights, marker="o", linewidth=1.8, label=_plain(name))
        return
    width = 0.8 / max(len(chart.series), 1)
    for index, (name, values) in enumerate(chart.series.items()):
        offset = (index - (len(chart.series) - 1) / 2) * width
        heights = [v if v is not None else 0.0 for v in values]
        axes.bar([p + offset for p in positions], heights, width=width, label=_plain(name))


def _plain(text: str) -> str:
    """As written: a pair of ``$`` would otherwise switch matplotlib to math mode."""
    return text.replace("$", r"\$")
