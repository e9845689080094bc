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
    replication_factor: Annotated[int, typer.Option(help="Replicas per partition.")] = 1,
    retry_tiers: Annotated[int, typer.Option(help="Retry topics per service.")] = 3,
    wait: Annotated[float, typer.Option(help="Seconds to keep trying to reach the broker.")] = 30.0,
) -> None:
    """Create every topic of the registry that does not exist yet; existing topics are left alone."""
    from rastro_cli.devstack.topics import TopicsError, apply_topics
    from rastro_events.topics import all_topics

    _quiet_libraries()
    console = Console()
    servers = bootstrap
    if not servers:
        console.print("[red]✗ no broker: pass --bootstrap or set KAFKA_BOOTSTRAP_SERVERS[/]")
        raise typer.Exit(2)
    specs = all_topics(partitions=partitions, retry_tiers=retry_tiers)
    try:
        applied = asyncio.run(
            apply_topics(servers, specs, replication_factor=replication_factor, connect_deadline=wait)
        )
    except TopicsError as exc:
        console.print(f"[red]✗ {exc}[/]")
        raise typer.Exit(1) from exc
    table = Table("topic", "partitions", "configs", "state")
    created = set(applied.created)
    for spec in specs:
        configs = ", ".join(f"{k}={v}" for k, v in spec.configs.items())
        state = "[green]created[/]" if spec.name in created else "[dim]exists[/]"
        table.add_row(spec.name, str(spec.partitions), configs, state)
    console.print(table)
    console.print(f"{len(applied.created)} created, {len(applied.existing)} already there, on {servers}")


def _quiet_libraries() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
