"""The evaluation report: figures per moment and per region, ``report.json`` and PNG plots."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from rastro_eta.evaluation import CALIBRATION_LEVELS, Evaluation, Scored, by_moment, errors_of, summarize

__all__ = ["PREDICTORS", "build_report", "write_plots", "write_report"]

PREDICTORS = {"expected": "expected", "promise": "promise", "olist_estimate": "olist"}
_TOP_REGIONS = 15


def _figures(scored: list[Scored]) -> dict[str, Any]:
    return {name: summarize(errors_of(scored, field)) for name, field in PREDICTORS.items()}


def _regions(scored: list[Scored]) -> dict[str, Any]:
    grouped: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        grouped[s.region].append(s)
    ordered = sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return {region: _figures(items) for region, items in ordered}


def _calibration(scored: list[Scored]) -> dict[str, float]:
    if not scored or not scored[0].ladder:
        return {}
    return {
        f"{q:g}": round(sum(s.delivered <= s.ladder[i] for s in scored) / len(scored), 4)
        for i, q in enumerate(CALIBRATION_LEVELS)
    }


def _months(scored: list[Scored]) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[Scored]] = defaultdict(list)
    for s in scored:
        grouped[s.month].append(s)
    return {
        month: {
            "n": len(items),
            "promise_on_time": round(sum(s.delivered <= s.promise for s in items) / len(items), 4),
            "olist_on_time": round(sum(s.delivered <= s.olist for s in items) / len(items), 4),
            "expected_mae": round(sum(abs((s.delivered - s.expected).days) for s in items) / len(items), 3),
        }
        for month, items in sorted(grouped.items())
    }


def build_report(evaluation: Evaluation, *, elapsed_seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    """Top level: the figures at purchase (the harder moment); ``moments`` has both."""
    moments = by_moment(evaluation)
    purchase = moments.get("purchase", [])
    per_moment = {
        moment: {
            "orders": len(scored),
            **_figures(scored),
            "by_region": _regions(scored),
            "promise_calibration": _calibration(scored),
            "by_month": _months(scored),
            "lane_levels": dict(sorted(_count(s.lane_level for s in scored).items())),
        }
        for moment, scored in sorted(moments.items())
    }
    top = _figures(purchase)
    olist_mae = top["olist_estimate"].get("mae_days") or 0.0
    acceptance = {moment: _acceptance(figures) for moment, figures in per_moment.items() if olist_mae}
    return {
        "orders": len(purchase),
        **top,
        "model_version": evaluation.parameters.version,
        "train_until": evaluation.train_until.isoformat(),
        "test_from": evaluation.test_from.isoformat(),
        "test_until": evaluation.test_until.isoformat() if evaluation.test_until else None,
        "events_replayed": evaluation.events,
        "elapsed_seconds": round(elapsed_seconds, 2),
        "moments": per_moment,
        "acceptance": acceptance,
        **extra,
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[v] += 1
    return counts


def _acceptance(figures: dict[str, Any]) -> dict[str, Any]:
    olist = figures["olist_estimate"]
    expected_ratio = figures["expected"]["mae_days"] / olist["mae_days"]
    promise_ratio = figures["promise"]["mae_days"] / olist["mae_days"]
    return {
        "expected_mae_ratio": round(expected_ratio, 3),
        "expected_mae_ratio_ok": expected_ratio <= 0.3,
        "promise_mae_ratio": round(promise_ratio, 3),
        "promise_mae_ratio_ok": promise_ratio <= 0.7,
        "promise_on_time_ok": figures["promise"]["on_time_share"] >= olist["on_time_share"],
    }


def write_report(report: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_plots(evaluation: Evaluation, report: dict[str, Any], folder: Path) -> list[Path]:
    """Error distribution, promise calibration and on-time rate by month (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    moments = by_moment(evaluation)
    written = []

    fig, axes = plt.subplots(1, max(len(moments), 1), figsize=(12, 4.5), squeeze=False)
    for ax, (moment, scored) in zip(axes[0], sorted(moments.items()), strict=False):
        bins = list(range(-40, 31))
        for name, field in PREDICTORS.items():
            clipped = [max(-40, min(30, e)) for e in errors_of(scored, field)]
            ax.hist(clipped, bins=bins, histtype="step", linewidth=1.5, label=name)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_title(f"error at {moment} (delivered − predicted, days)")
        ax.set_xlabel("days (negative: delivered before the date)")
        ax.legend()
    written.append(_save(fig, folder / "error_distribution.png", plt))

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0.5, 1.0], [0.5, 1.0], color="grey", linestyle="--", label="perfect calibration")
    for moment, figures in sorted(report["moments"].items()):
        calibration = figures["promise_calibration"]
        if calibration:
            ax.plot([float(q) for q in calibration], list(calibration.values()), marker="o", label=moment)
        ax.axhline(figures["olist_estimate"]["on_time_share"], linestyle=":", linewidth=1,
                   label=f"Olist estimate on time ({moment})")  # fmt: skip
    ax.set_xlabel("promise quantile")
    ax.set_ylabel("share delivered on or before the promise date")
    ax.set_title("calibration of the promise date")
    ax.legend(fontsize=8)
    written.append(_save(fig, folder / "promise_calibration.png", plt))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for moment, figures in sorted(report["moments"].items()):
        months = figures["by_month"]
        ax.plot(list(months), [m["promise_on_time"] for m in months.values()], marker="o",
                label=f"promise ({moment})")  # fmt: skip
    purchase = report["moments"].get("purchase", {}).get("by_month", {})
    ax.plot(list(purchase), [m["olist_on_time"] for m in purchase.values()], marker="s", linestyle="--",
            label="Olist estimate")  # fmt: skip
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("on-time share")
    ax.set_title("on-time rate by purchase month")
    ax.legend()
    written.append(_save(fig, folder / "on_time_by_month.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
