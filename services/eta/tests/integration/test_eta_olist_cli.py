"""``rastro eta evaluate`` and ``rastro eta backfill`` on a slice of the real Olist data."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from rastro_cli.main import app

pytestmark = pytest.mark.integration


def test_evaluate_prints_the_table_and_writes_the_report_and_plots(olist_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "eta", "evaluate", "--olist", str(olist_dir), "--train-from", "2017-11-01",
        "--train-until", "2018-02-01", "--test-until", "2018-02-10", "--report", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "promise quantile calibrated before the cut" in result.output
    assert "at purchase" in result.output and "at handover" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["orders"] > 100
    for name in ("expected", "promise", "olist_estimate"):
        assert {"mae_days", "on_time_share"} <= set(report[name])
    purchase, handover = report["moments"]["purchase"], report["moments"]["handover"]
    assert handover["expected"]["mae_days"] < purchase["expected"]["mae_days"]  # sharper at hand-over
    assert report["expected"]["mae_days"] < report["olist_estimate"]["mae_days"]
    assert report["promise_calibration_run"]["chosen"] in {0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}
    assert purchase["by_region"] and purchase["promise_calibration"]
    for png in ("error_distribution.png", "promise_calibration.png", "on_time_by_month.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_backfill_learns_each_delivery_once(olist_dir: Path, database_url: str) -> None:
    args = ["eta", "backfill", "--olist", str(olist_dir), "--tenant", "olist-backfill",
            "--until", "2017-03-01", "--database-url", database_url]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "0 new deliveries learned" in again.output

    async def counts() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "eta"})
        try:
            samples = await conn.fetchval(
                "SELECT count(*) FROM lane_samples WHERE tenant_id = 'olist-backfill'"
            )
            learned = await conn.fetchval(
                "SELECT deliveries FROM lane_states WHERE tenant_id = $1 AND lane_key = '*/*/*/*'",
                "olist-backfill",
            )
            return int(samples), int(learned)
        finally:
            await conn.close()

    samples, learned = asyncio.run(counts())
    assert samples == learned > 100
    assert f"{samples} new deliveries learned" in first.output


def test_a_folder_without_the_olist_files_is_refused_with_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eta", "evaluate", "--olist", str(tmp_path), "--train-until", "2018-01-01"]
    )
    assert result.exit_code == 2
    assert "olist_orders_dataset.csv" in result.output
