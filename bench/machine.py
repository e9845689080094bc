"""What the figures were measured on: the ``machine`` object of ``latest.json``."""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from backing import Backing
from workload import Record

__all__ = ["machine_info"]


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    found = (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    return next(found, platform.processor() or "?")


def machine_info(backing: Backing, args: argparse.Namespace, records: Sequence[Record]) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "broker": backing.broker,
        "cpu": _cpu_model(),
        "os": platform.platform(terse=True),
        "postgres": backing.postgres,
        "partitions": backing.partitions,
        "record_bytes": round(sum(len(r.value) for r in records) / max(len(records), 1)),
        "workload": {
            "broker_events": args.broker_events,
            "ingest_events": args.ingest_events,
            "service_events": args.service_events,
            "batch": args.batch,
            "http_concurrency": args.concurrency,
            "max_records": args.max_records,
        },
        "date": date.today().isoformat(),
    }
