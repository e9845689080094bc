"""``rastro eta backfill`` and ``rastro eta evaluate``: learn from the Olist history, and measure.

Both run the service's own domain code: ``evaluate`` through ``evaluation.OnlineModel`` (in memory),
``backfill`` through the repository the service uses (Postgres lane states of one tenant).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rastro_eta.domain.lane_state import learn
from rastro_eta.domain.lanes import lane_chain
from rastro_eta.domain.prediction import ModelParameters
from rastro_eta.domain.shipment import ShipmentFacts, apply_change
from rastro_eta.domain.transit import LaneSample, sample_of
from rastro_eta.evaluation import calibrate_promise_quantile, evaluate
from rastro_eta.olist import OlistOrder, missing_files, read_orders, shipment_events
from rastro_eta.report import PREDICTORS, build_report, write_plots, write_report
from rastro_eta.settings import EtaSettings

__all__ = ["eta_app"]

eta_app = typer.Typer(
    help="Delivery-date predictions: learn from history and evaluate.", no_args_is_help=True
)
console = Console()
_CALIBRATION_DAYS = 120
_CALIBRATION_GAP_DAYS = 30


def _olist_dir(olist: Path | None, settings: EtaSettings) -> Path:
    folder = olist or Path(settings.olist_dir)
    missing = missing_files(folder)
    if missing:
        raise typer.BadParameter(f"{folder} lacks {', '.join(missing)}", param_hint="--olist")
    return folder


def _orders(folder: Path, parameters: ModelParameters, replicate: int) -> list[OlistOrder]:
    zone = parameters.clock.zone
    assert zone is not None
    orders = list(read_orders(folder, zone))
    if replicate <= 1:
        return orders
    # A throughput check: copies of every order under new ids (the figures stay those of the data).
    return [replace(o, order_id=f"{o.order_id}-{i}") if i else o for i in range(replicate) for o in orders]


def _table(title: str, figures: dict[str, Any]) -> Table:
    table = Table(title=title)
    for column in ("predictor", "n", "MAE d", "median |e|", "P90 |e|", "on/before", "±1 d", "±3 d", "bias d"):
        table.add_column(column, justify="right" if column != "predictor" else "left")
    for name in PREDICTORS:
        f = figures[name]
        if not f.get("n"):
            continue
        table.add_row(
            name, str(f["n"]), f"{f['mae_days']:.2f}", f"{f['median_abs_days']:g}", f"{f['p90_abs_days']:g}",
            f"{f['on_time_share']:.1%}", f"{f['within_1_day_share']:.1%}", f"{f['within_3_days_share']:.1%}",
            f"{f['bias_days']:+.2f}",
        )  # fmt: skip
    return table


def _region_table(moment: str, regions: dict[str, Any], top: int) -> Table:
    table = Table(title=f"per origin→destination region, at {moment} (top {top} by orders)")
    for column in (
        "region",
        "n",
        "expected MAE",
        "promise MAE",
        "Olist MAE",
        "promise on time",
        "Olist on time",
    ):
        table.add_column(column, justify="right" if column != "region" else "left")
    for region, f in list(regions.items())[:top]:
        table.add_row(
            region, str(f["expected"]["n"]), f"{f['expected']['mae_days']:.2f}",
            f"{f['promise']['mae_days']:.2f}", f"{f['olist_estimate']['mae_days']:.2f}",
            f"{f['promise']['on_time_share']:.1%}", f"{f['olist_estimate']['on_time_share']:.1%}",
        )  # fmt: skip
    return table


@eta_app.command(name="evaluate")
def evaluate_command(
    train_until: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="learn orders purchased before")
    ],
    olist: Annotated[Path | None, typer.Option(help="Olist CSV folder (default: $RASTRO_OLIST_DIR)")] = None,
    train_from: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="ignore orders purchased before (a slice)")
    ] = None,
    test_from: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="score orders purchased from (default: cut)")
    ] = None,
    test_until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="score orders purchased before")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="folder for report.json and the PNG plots")] = None,
    promise_quantile: Annotated[
        float | None,
        typer.Option(help="fix the promise quantile; default: calibrate it on the months before the cut"),
    ] = None,
    plots: Annotated[bool, typer.Option(help="write the PNG plots (with --report)")] = True,
    regions: Annotated[int, typer.Option(help="regions shown in the table")] = 10,
    replicate: Annotated[
        int, typer.Option(help="throughput check: evaluate N copies of the data", min=1)
    ] = 1,
) -> None:
    """Train on orders before the cut, replay later ones in time order (learning online), score."""
    settings = EtaSettings()
    parameters = settings.prediction_parameters()
    folder = _olist_dir(olist, settings)
    started = time.perf_counter()
    orders = _orders(folder, parameters, replicate)
    if train_from is not None:
        orders = [o for o in orders if o.purchased_at.date() >= train_from.date()]
    cut = train_until.date()
    calibration: dict[str, Any] = {}
    if promise_quantile is None:
        chosen, calibration = calibrate_promise_quantile(
            orders, parameters, cut=cut,
            validation_from=cut - timedelta(days=_CALIBRATION_DAYS + _CALIBRATION_GAP_DAYS),
            validation_until=cut - timedelta(days=_CALIBRATION_GAP_DAYS),
        )  # fmt: skip
        parameters = replace(parameters, promise_quantile=chosen)
        console.print(f"promise quantile calibrated before the cut: [bold]{chosen:g}[/bold]")
    else:
        parameters = replace(parameters, promise_quantile=promise_quantile)
    with _progress() as progress:
        task = progress.add_task("replaying", total=None)
        evaluation = evaluate(
            orders, parameters, train_until=cut,
            test_from=test_from.date() if test_from else None,
            test_until=test_until.date() if test_until else None,
            progress=lambda n: progress.advance(task, n),
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    result = build_report(
        evaluation, elapsed_seconds=elapsed,
        extra={"olist_dir": str(folder), "replicate": replicate, "promise_calibration_run": calibration},
    )  # fmt: skip
    console.print(
        f"{result['orders']} test orders, {evaluation.events} events replayed in {elapsed:.1f} s — "
        f"model {parameters.version}"
    )
    for moment, figures in result["moments"].items():
        console.print(_table(f"at {moment}: {figures['orders']} orders", figures))
        console.print(_region_table(moment, figures["by_region"], regions))
        console.print(f"acceptance at {moment}: {result['acceptance'].get(moment)}")
    if report is not None:
        path = write_report(result, report)
        written = write_plots(evaluation, result, report) if plots else []
        console.print(f"wrote {path}" + "".join(f", {p.name}" for p in written))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )  # fmt: skip


def _samples(orders: list[OlistOrder], until: date | None) -> list[LaneSample]:
    """Every delivered order's sample, in delivery order (through the service's own fold)."""
    samples = []
    for order in orders:
        if until is not None and order.purchased_at.date() >= until:
            continue
        shipment: ShipmentFacts | None = None
        for event in shipment_events(order):
            shipment = apply_change(shipment, event)
        sample = sample_of(shipment) if shipment is not None else None
        if sample is not None and (until is None or sample.delivered_at.date() < until):
            samples.append(sample)
    return sorted(samples, key=lambda s: s.delivered_at)


@eta_app.command(name="backfill")
def backfill_command(
    tenant: Annotated[str, typer.Option(help="the tenant whose lanes learn the history")] = "demo",
    olist: Annotated[Path | None, typer.Option(help="Olist CSV folder (default: $RASTRO_OLIST_DIR)")] = None,
    until: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="learn deliveries before this day only")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="default: $DATABASE_URL")] = None,
    batch: Annotated[int, typer.Option(help="deliveries per transaction", min=1)] = 500,
) -> None:
    """Learn every delivered Olist order into the tenant's lane states in Postgres (once each)."""
    settings = EtaSettings()
    parameters = settings.prediction_parameters()
    folder = _olist_dir(olist, settings)
    samples = _samples(_orders(folder, parameters, 1), until.date() if until else None)
    dsn = database_url or settings.database_url
    learned = asyncio.run(_backfill(dsn, settings.schema, tenant, samples, parameters, batch))
    console.print(f"{learned} new deliveries learned for tenant {tenant!r} ({len(samples) - learned} known)")


async def _backfill(
    dsn: str, schema: str, tenant: str, samples: list[LaneSample], parameters: ModelParameters, batch: int
) -> int:
    from rastro_eta.adapters.repository import EtaRepository
    from rastro_kit.db import apply_migrations, create_pool

    pool = await create_pool(dsn, schema, max_size=2, application_name="rastro-eta-backfill")
    learned = 0
    try:
        await apply_migrations(pool, schema, ("rastro_eta.migrations",))
        with _progress() as progress:
            task = progress.add_task("learning", total=len(samples))
            for i in range(0, len(samples), batch):
                chunk = samples[i : i + batch]
                async with pool.acquire() as conn, conn.transaction():
                    repo = EtaRepository(conn)
                    keys = {k for s in chunk for k in lane_chain(s.attributes)}
                    states = await repo.lane_states(tenant, keys, for_update=True)
                    changed = set()
                    for sample in chunk:
                        if await repo.add_sample(tenant, sample):
                            p = parameters
                            changed.update(
                                learn(
                                    states,
                                    sample,
                                    p.clock,
                                    half_life_days=p.half_life_days,
                                    bin_days=p.bin_days,
                                )
                            )
                            learned += 1
                    await repo.save_lane_states(tenant, [states[k] for k in changed])
                progress.advance(task, len(chunk))
    finally:
        await pool.close()
    return learned
