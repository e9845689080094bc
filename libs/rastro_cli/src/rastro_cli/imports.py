"""``rastro import FILE``: stream a CSV or EDI file (OCOREN, X12 214) to ``POST /v1/imports`` with a
progress bar.

The file is sent with chunked transfer encoding, read a piece at a time, so its size does not matter
to this process or to the service. Defaults come from the environment that ``make run`` writes to
``.rastro/demo.env`` (read from there too when the variables are not exported).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from rastro_cli.local_env import demo_env

__all__ = ["import_file"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_PIECE = 256 * 1024
_SHOWN_ERRORS = 10
console = Console()


def import_file(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="the CSV or EDI file")
    ],
    mapping: Annotated[
        str | None,
        typer.Option(help='JSON: our field → your header, e.g. \'{"tracking_number": "Rastreio"}\''),
    ] = None,
    delimiter: Annotated[str | None, typer.Option(help="`,` `;` `|` or `tab` (default: sniffed)")] = None,
    encoding: Annotated[str, typer.Option(help="utf-8, latin-1 or windows-1252")] = "utf-8",
    event_type: Annotated[
        str | None, typer.Option("--type", help="type of rows without a type column")
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for times without offset")] = None,
    tenant: Annotated[str | None, typer.Option(help="operator keys only: the tenant to import for")] = None,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, ocoren, x12-214, or edi (either EDI); default: edi for .txt/.edi/.x12, else csv",
        ),
    ] = None,
    carrier: Annotated[
        str | None, typer.Option(help="EDI: the sending carrier, when the file's sender name is not")
    ] = None,
    ack: Annotated[
        Path | None, typer.Option(help="X12 214: write the 997 acknowledgement to this file")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="default: $RASTRO_BASE_URL, else the dev gateway")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="default: $RASTRO_API_KEY or $RASTRO_DEMO_API_KEY")
    ] = None,
) -> None:
    """Import a CSV file of tracking or order events (one event per row), or an EDI occurrence file."""
    if mapping is not None:
        try:
            json.loads(mapping)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc.msg}", param_hint="--mapping") from None
    options = {
        "mapping": mapping,
        "delimiter": delimiter,
        "encoding": encoding,
        "type": event_type,
        "timezone": timezone,
        "tenant": tenant,
        "filename": file.name,
        "format": file_format or _format_of(file),
        "carrier": carrier,
    }
    _run(file, {k: v for k, v in options.items() if v is not None}, *_endpoint(base_url, api_key), ack)


def _format_of(file: Path) -> str:
    return "edi" if file.suffix.lower() in (".txt", ".edi", ".x12", ".ocoren", ".oco") else "csv"


def _run(file: Path, params: dict[str, str], url: str, key: str, ack: Path | None = None) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
    with httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, read=600.0), trust_env=False) as client:
        response = _upload(client, file, params, headers)
        body = _json(response)
        if response.status_code == 202:
            job, failure = body, None
        elif response.status_code == 422 and isinstance(body.get("job"), dict):
            job, failure = body["job"], body.get("detail")  # broke off part-way, or malformed EDI
        else:
            _fail(response, body)
        _print_summary(job, failure)
        if job["rows_rejected"] or job["errors_truncated"] or failure:
            _print_errors(client, job, headers)
        if ack is not None and "acknowledgement" in job["links"]:
            answer = client.get(
                job["links"]["acknowledgement"], headers={"Authorization": headers["Authorization"]}
            )
            ack.write_text(answer.text, encoding="ascii")
            console.print(f"997 acknowledgement written to {ack}")
    if response.status_code != 202:
        raise typer.Exit(1)


def _endpoint(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    env = demo_env()
    url = base_url or os.environ.get("RASTRO_BASE_URL") or env.get("RASTRO_BASE_URL") or DEFAULT_BASE_URL
    key = (
        api_key
        or os.environ.get("RASTRO_API_KEY")
        or os.environ.get("RASTRO_DEMO_API_KEY")
        or env.get("RASTRO_API_KEY")
        or env.get("RASTRO_DEMO_API_KEY")
    )
    if not key:
        raise typer.BadParameter("no API key: pass --api-key or set RASTRO_API_KEY", param_hint="--api-key")
    return url.rstrip("/"), key


def _upload(
    client: httpx.Client, file: Path, params: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    size = file.stat().st_size
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"importing {file.name}", total=size)

        def pieces() -> Iterator[bytes]:
            with file.open("rb") as fh:
                while piece := fh.read(_PIECE):
                    progress.advance(task, len(piece))
                    yield piece

        try:
            return client.post("/v1/imports", params=params, headers=headers, content=pieces())
        except httpx.HTTPError as exc:
            console.print(f"[red]upload failed:[/] {exc!r}")
            raise typer.Exit(1) from None


def _print_summary(job: dict[str, Any], failure: str | None) -> None:
    table = Table(show_header=False, box=None)
    colour = "green" if job["status"] == "completed" else "red"
    table.add_row("job", job["id"])
    table.add_row("status", f"[{colour}]{job['status']}[/]")
    for name in ("rows_read", "rows_accepted", "rows_rejected", "rows_duplicate", "events_enqueued"):
        table.add_row(name.replace("_", " "), f"{job[name]:,}")
    if failure:
        table.add_row("error", f"[red]{failure}[/]")
    console.print(table)


def _print_errors(client: httpx.Client, job: dict[str, Any], headers: dict[str, str]) -> None:
    url = job["links"]["errors"]
    lines: list[str] = []
    with client.stream("GET", url, headers={"Authorization": headers["Authorization"]}) as response:
        for line in response.iter_lines():
            lines.append(line)
            if len(lines) > _SHOWN_ERRORS:
                break
    console.print(f"[yellow]{job['rows_rejected']:,} rows rejected[/]; first errors (row or line):")
    for line in lines[1:]:
        console.print(f"  {line}", markup=False)
    console.print(f"all of them as CSV: GET {str(client.base_url).rstrip('/')}{url}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _fail(response: httpx.Response, body: dict[str, Any]) -> NoReturn:
    console.print(f"[red]import refused ({response.status_code}):[/]")
    console.print(body.get("detail") or response.text[:500], markup=False)
    for error in body.get("errors") or []:
        console.print(f"  {error}", markup=False)
    raise typer.Exit(1)
