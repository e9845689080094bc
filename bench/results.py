"""One benchmark figure beside its ceiling, and the files ``make bench`` leaves behind."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

__all__ = ["Result", "percentile", "write_results"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    latencies_ms: Sequence[float] = ()
    ceiling: Result | None = None
    note: str = ""
    is_ceiling: bool = False
    cpu_s: float | None = None  # this process's CPU time over the timed window (services run in-process)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        # A ceiling is its own ceiling (ratio 1.0); a figure whose ceiling did not run has none (null).
        ceiling = (
            self.events_per_s if self.is_ceiling else self.ceiling.events_per_s if self.ceiling else None
        )
        ratio = self.events_per_s / ceiling if ceiling else None
        return {
            "events_per_s": round(self.events_per_s, 1),
            "ceiling_events_per_s": round(ceiling, 1) if ceiling is not None else None,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "p50_ms": _ms(percentile(self.latencies_ms, 50)),
            "p99_ms": _ms(percentile(self.latencies_ms, 99)),
        }


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _cell(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


_COLUMNS = (
    "scenario",
    "events",
    "events/s",
    "ceiling events/s",
    "ratio",
    "p50 ms",
    "p99 ms",
    "CPU µs/event",
    "ceiling",
)


def _row(r: Result) -> list[str]:
    j = r.as_json()
    cpu_us = r.cpu_s / r.events * 1e6 if r.cpu_s is not None and r.events else None
    return [
        r.name,
        f"{r.events:,}",
        _cell(j["events_per_s"], ",.0f"),
        _cell(j["ceiling_events_per_s"], ",.0f"),
        _cell(j["ratio"], ".2f"),
        _cell(j["p50_ms"], ",.1f"),
        _cell(j["p99_ms"], ",.1f"),
        _cell(cpu_us, ",.0f"),
        "(is a ceiling)" if r.is_ceiling else r.ceiling.name if r.ceiling else "–",
    ]


def markdown(machine: dict[str, Any], results: Sequence[Result], today: date) -> str:
    lines = [
        f"# Rastro benchmarks, {today.isoformat()}",
        "",
        f"{machine['cores']} cores ({machine.get('cpu', '?')}), Python {machine['python']}, "
        f"broker {machine['broker']}, Postgres {machine.get('postgres', '?')}; "
        f"{machine.get('partitions', '?')} partitions, ~{machine.get('record_bytes', '?')}-byte records.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|---|" + "---:|" * (len(_COLUMNS) - 2) + "---|",
        *("| " + " | ".join(_row(r)) + " |" for r in results),
        "",
        "CPU µs/event: CPU time of the benchmark process (client, service, relay, read-back) over the timed "
        "window, per event.",
    ]
    notes = [f"- **{r.name}**: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_results(directory: Path, machine: dict[str, Any], results: Sequence[Result], today: date) -> str:
    """Write ``latest.json`` and ``<date>.md``; returns the Markdown table."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine, "results": {r.name: r.as_json() for r in results}}
    (directory / "latest.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    table = markdown(machine, results, today)
    (directory / f"{today.isoformat()}.md").write_text(table, encoding="utf-8")
    return table
