"""``rastro dev …`` and ``rastro topics …``: the dev stack and the topic registry on the command line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["dev_app", "topics_app"]

# aiokafka logs an ERROR for each refused connection while we are still retrying; we report the outcome.
_QUIET_LOGGERS = ("aiokafka",)

dev_app = typer.Typer(help="The local dev stack (what `make run` runs).", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the registry in rastro_events.topics.", no_args_is_help=True)


@dev_app.command("up")
def dev_up(
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for every service's /readyz.")] = 60.0,
    demo: Annotated[bool, typer.Option(help="Feed demo Correios shipments to tenant `demo`.")] = True,
    partitions: Annotated[int, typer.Option(help="Partitions per topic.")] = 12,
) -> None:
    """Start Tansu, Postgres, the five services and the gateway on 127.0.0.1:8000; Ctrl-C stops all.

    KAFKA_BOOTSTRAP_SERVERS or DATABASE_URL, when set, replace the embedded broker or database.
    State and logs go to .rastro/ in the current directory.
    """
    from rastro_cli.devstack.stack import DevOptions, run_dev_stack

    _quiet_libraries()
    options = DevOptions(root=Path.cwd(), ready_timeout=ready_timeout, demo=demo, partitions=partitions)
    raise typer.Exit(run_dev_stack(options))


@topics_app.command("apply")
def topics_apply(
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap servers.", envvar="KAFKA_BOOTSTRAP_SERVERS")
    ] = None,
    partitions: Annotated[int, typer.Option(help="Partitions of the main and per-service topics.")] = 12,
    replication_factor: Annotated[
        int, typer.Option(help="Replicas per partition (3 on a production cluster).")
    ] = 1,
    retry_tiers: Annotated[int, typer.Option(help="Retry topics per service.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences, change nothing.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to keep trying to reach the broker.")] = 30.0,
) -> None:
    """Create the registry's topics, or bring existing ones up to it: more partitions (never fewer) and
    the registry's configs. TLS/SASL come from the KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* settings."""
    from rastro_cli.devstack.topics import TopicsError, reconcile_topics
    from rastro_events.topics import all_topics

    _quiet_libraries()
    console = Console()
    if not bootstrap:
        console.print("[red]✗ no broker: pass --bootstrap or set KAFKA_BOOTSTRAP_SERVERS[/]")
        raise typer.Exit(2)
    specs = all_topics(partitions=partitions, retry_tiers=retry_tiers)
    try:
        result = asyncio.run(
            reconcile_topics(
                bootstrap,
                specs,
                replication_factor=replication_factor,
                dry_run=dry_run,
                connect_deadline=wait,
            )
        )
    except TopicsError as exc:
        console.print(f"[red]✗ {exc}[/]")
        raise typer.Exit(1) from exc
    table = Table("topic", "partitions", "configs", "state")
    for change, spec in zip(result.changes, specs, strict=True):
        configs = ", ".join(f"{k}={v}" for k, v in spec.configs.items())
        if change.create is not None:
            state = "[yellow]to create[/]" if dry_run else "[green]created[/]"
        elif change.actions:
            verb = "to change" if dry_run else "changed"
            state = f"[yellow]{verb}:[/] " + "; ".join(change.describe())
        elif change.warnings:
            state = "[red]differs:[/] " + "; ".join(change.warnings)
        else:
            state = "[dim]up to date[/]"
        table.add_row(spec.name, str(spec.partitions), configs, state)
    console.print(table)
    created = sum(1 for c in result.changes if c.create is not None)
    changed = len(result.pending) - created
    untouched = len(result.changes) - len(result.pending)
    prefix = "dry run, nothing changed: would create" if dry_run else "created"
    console.print(
        f"{prefix} {created}, {'would change' if dry_run else 'changed'} {changed},"
        f" {untouched} already there, on {bootstrap}"
    )
    for warning in result.warnings:
        console.print(f"[red]! {warning}[/]")


def _quiet_libraries() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
