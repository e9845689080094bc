"""``rastro dev up``: the whole stack on one machine, stopped cleanly by Ctrl-C or SIGTERM.

Start order: Postgres, Tansu, topics, the gateway, the five services; stop order is the reverse, so
services drain while the broker and the database are still there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.panel import Panel

from rastro_cli.devstack.catalog import GATEWAY_PORT, HOST, SERVICES, ServiceSpec, service_url
from rastro_cli.devstack.layout import DevLayout
from rastro_cli.devstack.ports import free_port, port_is_free, who_listens
from rastro_cli.devstack.processes import ChildProcess, end_leftovers, stop_all
from rastro_cli.devstack.readiness import NotReady, Probe, wait_until_ready

if TYPE_CHECKING:
    from rastro_cli.devstack.postgres import EmbeddedPostgres

__all__ = ["DevOptions", "DevStack", "DevStackError", "run_dev_stack"]

BASE_URL = f"http://{HOST}:{GATEWAY_PORT}"
FAKE_CARRIER_PORT = 8010


@dataclass(frozen=True)
class DevOptions:
    root: Path
    ready_timeout: float = 60.0
    demo: bool = True
    partitions: int = 12
    seed: int = 7
    grace: float = 10.0
    """Seconds a service gets between SIGTERM and SIGKILL."""


class DevStackError(RuntimeError):
    """The stack could not start; the message says why."""


def run_dev_stack(options: DevOptions, console: Console | None = None) -> int:
    """Run until SIGINT/SIGTERM; the process exit code."""
    return asyncio.run(_main(DevStack(options, console or Console(), dict(os.environ))))


async def _main(stack: DevStack) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopping = False

    def on_signal(name: str) -> None:
        nonlocal stopping
        if stopping:
            stack.console.print("[dim]still stopping…[/]")
            return
        stopping = True
        stack.console.print(f"\n[bold]{name}[/]: stopping Rastro…")
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        return await stack.run()
    except asyncio.CancelledError:
        if not stopping:
            raise
        task.uncancel()
        stack.console.print("[green]Stopped.[/]")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class DevStack:
    def __init__(self, options: DevOptions, console: Console, environ: Mapping[str, str]) -> None:
        self.options = options
        self.console = console
        self.environ = dict(environ)
        self.layout = DevLayout(options.root.resolve())
        self.services: list[ChildProcess] = []
        self.gateway: ChildProcess | None = None
        self.fake_carrier: ChildProcess | None = None
        self.fake_carrier_url = ""
        self.broker: ChildProcess | None = None
        self.postgres: EmbeddedPostgres | None = None

    async def run(self) -> int:
        from rastro_cli.devstack.run_lock import AlreadyRunning, RunLock

        self.layout.create()
        lock = RunLock(self.layout.lock)
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            self.console.print(f"[red]✗ {exc}[/]")
            return 1
        try:
            ended = end_leftovers(self.layout.run)
            if ended:
                self.console.print(f"[yellow]Ended leftovers of an earlier run: {', '.join(ended)}[/]")
            async with AsyncExitStack() as cleanup:
                try:
                    bootstrap, database_url = await self._start_backing(cleanup)
                    admin_key = await self._start_processes(cleanup, bootstrap, database_url)
                except DevStackError as exc:
                    self.console.print(f"[red]✗ {exc}[/]")
                    self.console.print("Stopping what was started…")
                    return 1
                await self._welcome(admin_key, bootstrap, database_url)
                await self._supervise()
        finally:
            lock.release()
        return 0

    async def _start_backing(self, cleanup: AsyncExitStack) -> tuple[str, str]:
        """Postgres, Kafka and the topics; the bootstrap servers and the database URL."""
        from rastro_cli.devstack.backing import BackingError, start_embedded_broker, start_embedded_postgres
        from rastro_cli.devstack.topics import TopicsError, apply_topics
        from rastro_events.topics import all_topics

        self._check_ports()
        try:
            if database_url := self.environ.get("DATABASE_URL", ""):
                self._ok("postgres: using DATABASE_URL")
            else:
                self.postgres = await start_embedded_postgres(cleanup, self.layout)
                database_url = self.postgres.url
                self._ok(f"postgres: embedded, data in {self.layout.pg_data}")
            if bootstrap := self.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""):
                self._ok(f"kafka: using KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
            else:
                broker = await start_embedded_broker(cleanup, self.layout)
                self.broker, bootstrap = broker.child, broker.bootstrap
                self._ok(f"kafka: embedded Tansu at {bootstrap} (memory only)")
            applied = await apply_topics(
                bootstrap, all_topics(partitions=self.options.partitions), connect_deadline=15.0
            )
        except (BackingError, TopicsError) as exc:
            raise DevStackError(str(exc)) from exc
        self._ok(f"topics: {len(applied.created)} created, {len(applied.existing)} already there")
        return bootstrap, database_url

    async def _start_processes(self, cleanup: AsyncExitStack, bootstrap: str, database_url: str) -> str:
        """The gateway and the services, until all are ready; the admin key they share."""
        from rastro_cli.devstack.credentials import load_or_create_admin_key

        admin_key = self.environ.get("RASTRO_ADMIN_API_KEY") or load_or_create_admin_key(
            self.layout.admin_key
        )
        gateway_env = {"RASTRO_GATEWAY_HOST": HOST, "RASTRO_GATEWAY_PORT": str(GATEWAY_PORT)}
        self.gateway = self._child("gateway", "rastro_cli.devstack.gateway", gateway_env)
        cleanup.callback(self.gateway.stop, self.options.grace)
        self.fake_carrier = self._start_fake_carrier()
        cleanup.callback(self.fake_carrier.stop, self.options.grace)
        cleanup.push_async_callback(self._stop_services)
        for spec in SERVICES:
            env = self._service_env(spec, bootstrap, database_url, admin_key)
            self.services.append(self._child(spec.name, spec.module, env))
        await self._wait_ready()
        return admin_key

    async def _welcome(self, admin_key: str, bootstrap: str, database_url: str) -> None:
        """The demo tenant and feed, ``.rastro/demo.env``, and the ready panel."""
        from rastro_cli.devstack.credentials import write_env_file
        from rastro_cli.devstack.demo_setup import set_up_demo
        from rastro_cli.devstack.ready_panel import ReadyInfo, print_ready

        seed = self.options.seed if self.options.demo else None
        demo_key, tracking_number = await set_up_demo(
            self.console, BASE_URL, admin_key, seed=seed, fake_carrier_url=self.fake_carrier_url
        )
        write_env_file(
            self.layout.demo_env,
            {
                "RASTRO_DEMO_API_KEY": demo_key or "",
                "RASTRO_ADMIN_API_KEY": admin_key,
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "DATABASE_URL": database_url,
                "RASTRO_BASE_URL": BASE_URL,
            },
        )
        embedded_pg = f"embedded, data in {self.layout.pg_data}"
        print_ready(
            self.console,
            ReadyInfo(
                base_url=BASE_URL,
                admin_key=admin_key,
                demo_key=demo_key,
                bootstrap=bootstrap,
                database_url=database_url,
                broker_note="embedded Tansu, memory only" if self.broker else "from KAFKA_BOOTSTRAP_SERVERS",
                database_note=embedded_pg if self.postgres else "from DATABASE_URL",
                logs=self.layout.logs,
                demo_env=self.layout.demo_env,
                tracking_number=tracking_number,
            ),
        )

    def _ok(self, message: str) -> None:
        self.console.print(f"[green]✓[/] {message}")

    def _check_ports(self) -> None:
        wanted = {GATEWAY_PORT: "gateway", **{s.port: s.name for s in SERVICES}}
        busy = [
            f"{port} ({name}) is taken by {who_listens(port)}"
            for port, name in wanted.items()
            if not port_is_free(port)
        ]
        if busy:
            raise DevStackError("ports in use:\n  " + "\n  ".join(busy))

    def _child(self, name: str, module: str, extra_env: Mapping[str, str]) -> ChildProcess:
        env = {**self.environ, "PYTHONUNBUFFERED": "1", **extra_env}
        child = ChildProcess(
            name,
            [sys.executable, "-m", module],
            env=env,
            log_path=self.layout.log(name),
            pid_file=self.layout.pid_file(name),
            cwd=self.layout.root,
        )
        child.start()
        return child

    def _start_fake_carrier(self) -> ChildProcess:
        """A local stand-in for the Correios tracking API, which the demo tenant's connection polls."""
        port = FAKE_CARRIER_PORT if port_is_free(FAKE_CARRIER_PORT) else free_port()
        self.fake_carrier_url = f"http://{HOST}:{port}"
        module = "rastro_ingest.adapters.carriers.fake_correios"
        argv = [
            sys.executable,
            "-m",
            module,
            "--host",
            HOST,
            "--port",
            str(port),
            "--rate",
            "5",
            "--step",
            "20",
            "--known-prefix",  # only the demo's polled numbers exist there (see demo_setup), so
            "PL",  # shipments posted by hand are not joined by invented carrier events
        ]
        child = ChildProcess(
            "fake-correios",
            argv,
            env={**self.environ, "PYTHONUNBUFFERED": "1"},
            log_path=self.layout.log("fake-correios"),
            pid_file=self.layout.pid_file("fake-correios"),
            cwd=self.layout.root,
        )
        child.start()
        return child

    def _service_env(
        self, spec: ServiceSpec, bootstrap: str, database_url: str, admin_key: str
    ) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "RASTRO_ADMIN_API_KEY": admin_key,
            "RASTRO_MODE": self.environ.get("RASTRO_MODE", "development"),
            "RASTRO_LOG_LEVEL": self.environ.get("RASTRO_LOG_LEVEL", "INFO"),
            "RASTRO_HTTP_HOST": HOST,
            "RASTRO_HTTP_PORT": str(spec.port),
        }
        if self.broker is not None:
            env["RASTRO_KAFKA_IDEMPOTENCE"] = "false"  # Tansu has no InitProducerId
        if spec.name == "ingest":
            env["RASTRO_INGEST_INBOX_DIR"] = self.environ.get(
                "RASTRO_INGEST_INBOX_DIR", str(self.layout.inbox)
            )
        return env

    async def _wait_ready(self) -> None:
        assert self.gateway is not None
        probes = [Probe(c, f"{service_url(s)}/readyz") for s, c in zip(SERVICES, self.services, strict=True)]
        probes.append(Probe(self.gateway, f"{BASE_URL}/healthz"))

        def ready(probe: Probe, seconds: float) -> None:
            self._ok(f"{probe.child.name} ready ({seconds:.1f} s)")

        with self.console.status("Waiting for the services to be ready…"):
            try:
                await wait_until_ready(probes, self.options.ready_timeout, ready)
            except NotReady as exc:
                child = exc.probe.child
                self.console.print(
                    Panel(
                        child.log_tail(40) or "(empty)",
                        expand=False,
                        border_style="red",
                        title=f"last lines of {child.log_path}",
                    )
                )
                raise DevStackError(str(exc)) from exc

    async def _stop_services(self) -> None:
        killed = await stop_all(self.services, self.options.grace)
        if killed:
            self.console.print(f"[yellow]! killed after {self.options.grace:.0f} s: {', '.join(killed)}[/]")

    async def _supervise(self) -> None:
        """Report children that die; never restart them (a crash loop would hide the cause)."""
        watched = [c for c in (self.broker, self.gateway, self.fake_carrier, *self.services) if c is not None]
        reported: set[str] = set()
        while True:
            await asyncio.sleep(1.0)
            for child in watched:
                if child.returncode is not None and child.name not in reported:
                    reported.add(child.name)
                    self.console.print(
                        Panel(
                            child.log_tail(30) or "(empty)",
                            border_style="red",
                            expand=False,
                            title=f"{child.name} exited with code {child.returncode} (not restarted)",
                            subtitle=str(child.log_path),
                        )
                    )
            if self.postgres is not None and not self.postgres.running and "postgres" not in reported:
                reported.add("postgres")
                self.console.print(f"[red]✗ embedded postgres stopped; see {self.layout.log('postgres')}[/]")
