"""The watched inbox folder: files dropped in ``<inbox>/<tenant>/`` are imported once, then moved to
``<inbox>/<tenant>/done/`` or ``failed/`` with a report beside them (``<name>.report.json``).

This is how EDI files arrive in practice: a carrier's SFTP account (or a mail-to-folder rule) writes
into the tenant's folder. ``RASTRO_INGEST_INBOX_DIR`` turns it on (``make run`` sets ``.rastro/inbox``).

- A file is taken once its size and modification time have not changed for ``inbox_settle_s`` (a
  file still being uploaded is left alone), and names starting with ``.`` or ending in ``.part`` /
  ``.tmp`` / ``.filepart`` never are (the usual upload-in-progress names).
- Taking it is a rename into ``processing/``: atomic, so of several ingest instances sharing the
  folder exactly one imports each file. A file left in ``processing/`` by an instance that died is
  imported again at the next start (the import is idempotent: ids derive from the content).
- The format comes from the content: OCOREN or X12 214, else CSV when the name ends in ``.csv``.
  A file that is neither goes to ``failed/`` with the reason.
- ``done/`` holds the files that were imported, ``failed/`` those refused whole (malformed, not EDI
  nor CSV, unknown tenant): nothing of those was published. A file imported with some lines rejected
  (an occurrence whose invoice no order has yet) is in ``done/``; its report lists those lines, and
  dropping the file again once the orders are known publishes just them.
- The report is the import job as ``GET /v1/imports/{id}`` shows it, plus the errors with line and
  column (the first 1,000) and, for X12, the 997 is written beside it as ``<name>.997``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rastro_ingest.adapters.repository import tenant_exists
from rastro_ingest.domain.csv_rows import CsvOptionsError
from rastro_ingest.domain.edi import EdiFormatError, detect_format
from rastro_ingest.imports.edi import EdiImportRequest, EdiRejected, run_edi_import
from rastro_ingest.imports.importer import ImportFailed, ImportRequest, run_import
from rastro_ingest.imports.repository import iter_errors, job_view
from rastro_kit.logs import get_logger

__all__ = ["Inbox", "watch_inbox"]

log = get_logger(__name__)
_SKIPPED_SUFFIXES = (".part", ".tmp", ".filepart", ".report.json", ".997")
_FOLDERS = ("processing", "done", "failed")
_READ = 256 * 1024
_REPORTED_ERRORS = 1000


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class Inbox:
    """One pass at a time over ``root``; ``scan`` returns the reports of the files it imported."""

    def __init__(self, pool: Any, root: Path, settle_s: float = 2.0) -> None:
        self.pool = pool
        self.root = root
        self.settle_s = settle_s
        self._seen: dict[Path, _Seen] = {}

    def recover(self) -> None:
        """Put files an interrupted instance left in ``processing/`` back in the tenant's folder."""
        self.root = self.root.expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        for tenant_dir in self._tenant_dirs():
            for path in (tenant_dir / "processing").glob("*"):
                if path.is_file():
                    path.rename(tenant_dir / path.name)
                    log.info("inbox_file_recovered", tenant=tenant_dir.name, file=path.name)

    async def scan(self) -> list[dict[str, Any]]:
        reports = []
        for tenant, path in await asyncio.to_thread(self._ready_files):
            report = await self._take(tenant, path)
            if report is not None:
                reports.append(report)
        return reports

    def _ready_files(self) -> list[tuple[str, Path]]:
        return [
            (tenant_dir.name, path)
            for tenant_dir in self._tenant_dirs()
            for path in sorted(tenant_dir.iterdir())
            if self._ready(path)
        ]

    def _tenant_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [d for d in sorted(self.root.iterdir()) if d.is_dir() and not d.name.startswith(".")]

    def _ready(self, path: Path) -> bool:
        """Whether ``path`` is a finished upload: unchanged for ``settle_s`` seconds."""
        if not path.is_file() or path.name.startswith(".") or path.name.endswith(_SKIPPED_SUFFIXES):
            return False
        stat = path.stat()
        now = time.monotonic()
        seen = self._seen.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self._seen[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)
            return self.settle_s == 0
        return now - seen.since >= self.settle_s

    async def _take(self, tenant: str, path: Path) -> dict[str, Any] | None:
        self._seen.pop(path, None)
        claimed = await asyncio.to_thread(_claim, path)
        if claimed is None:
            return None  # another instance took it first
        log.info("inbox_file_taken", tenant=tenant, file=path.name)
        try:
            ok, report = await self._import(tenant, claimed)
        except Exception as exc:  # a file must never stop the watcher: it is reported
            log.exception("inbox_file_crashed", tenant=tenant, file=path.name)
            ok, report = False, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        report = {"file": path.name, "tenant": tenant, **report}
        await asyncio.to_thread(self._file_away, claimed, ok, report)
        log.info("inbox_file_done", tenant=tenant, file=path.name, ok=ok, job_id=report.get("id"))
        return report

    def _file_away(self, claimed: Path, ok: bool, report: dict[str, Any]) -> None:
        """Move the file to ``done/`` or ``failed/`` and write its report (and 997) beside it."""
        target = _free_name(claimed.parent.parent / ("done" if ok else "failed"), claimed.name)
        claimed.rename(target)
        acknowledgement = report.pop("acknowledgement", None)
        if acknowledgement:
            target.with_name(target.name + ".997").write_text(acknowledgement, encoding="ascii")
        report["moved_to"] = str(target.relative_to(self.root))
        target.with_name(target.name + ".report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )

    async def _import(self, tenant: str, path: Path) -> tuple[bool, dict[str, Any]]:
        async with self.pool.acquire() as conn:
            if not await tenant_exists(conn, tenant):
                return False, {"status": "failed", "error": f"unknown tenant {tenant!r} (the folder's name)"}
        data = await asyncio.to_thread(path.read_bytes) if not path.name.lower().endswith(".csv") else b""
        if data:
            try:
                detect_format(data)
            except EdiFormatError as exc:
                return False, {"status": "failed", "error": f"neither EDI nor a .csv file: {exc}"}
            request = EdiImportRequest(tenant_id=tenant, filename=path.name, source="inbox")
            try:
                job = await run_edi_import(self.pool, data, request)
            except EdiRejected as exc:
                if exc.job is None:
                    return False, {"status": "failed", "error": exc.message, "errors": exc.errors}
                return False, {**_report(exc.job), "errors": exc.errors}
            return True, _report(job, await self._errors(job))
        try:
            job = await run_import(
                self.pool, _chunks(path), ImportRequest(tenant_id=tenant, filename=path.name)
            )
        except CsvOptionsError as exc:
            return False, {"status": "failed", "error": f"{exc.field}: {exc.message}"}
        except ImportFailed as exc:
            return False, _report(exc.job, await self._errors(exc.job))
        return True, _report(job, await self._errors(job))

    async def _errors(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The job's first ``_REPORTED_ERRORS`` errors, in line order."""
        errors: list[dict[str, Any]] = []
        async for line, field, message in iter_errors(self.pool, job["id"], page=_REPORTED_ERRORS):
            errors.append({"line": line, "field": field, "message": message})
            if len(errors) == _REPORTED_ERRORS:
                break
        return errors


def _report(job: dict[str, Any], errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    options = job.get("options") or {}
    report = {k: v for k, v in job_view(job).items() if k not in ("options", "links")}
    report["format"] = options.get("format", "csv")
    if options.get("acknowledgement"):
        report["acknowledgement"] = options["acknowledgement"]
    if errors is not None:
        report["errors"] = errors
    return report


def _claim(path: Path) -> Path | None:
    """Rename ``path`` into its folder's ``processing/``: atomic, so only one instance gets it."""
    for folder in _FOLDERS:
        (path.parent / folder).mkdir(exist_ok=True)
    claimed = path.parent / "processing" / path.name
    try:
        path.rename(claimed)
    except FileNotFoundError:
        return None
    return claimed


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, suffixed ``.1``, ``.2``… when a file of that name is already there."""
    target, n = folder / name, 0
    while target.exists():
        n += 1
        target = folder / f"{name}.{n}"
    return target


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while piece := await asyncio.to_thread(fh.read, _READ):
            yield piece
    finally:
        fh.close()


async def watch_inbox(runtime: Any) -> None:
    """The ingest background task: scan the inbox every ``inbox_poll_s`` (off without ``inbox_dir``)."""
    settings = runtime.settings
    if not settings.inbox_dir:
        return
    inbox = Inbox(runtime.pool, Path(settings.inbox_dir), settings.inbox_settle_s)
    runtime.state["inbox"] = inbox
    await asyncio.to_thread(inbox.recover)
    log.info("inbox_watching", path=str(inbox.root))
    while True:
        try:
            await inbox.scan()
        except Exception:
            log.exception("inbox_scan_failed")
        await asyncio.sleep(settings.inbox_poll_s)
