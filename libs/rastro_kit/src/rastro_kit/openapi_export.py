"""Writes each service's OpenAPI document to ``schemas/openapi/<service>.json`` (``--check``: fail on drift).

Each service's ``build_app`` is imported and called with default settings; building an app connects to
nothing (the runtime starts in the app's lifespan), so this runs without a broker or a database.
Run ``uv run python -m rastro_kit.openapi_export`` (or ``make schemas``) after changing a route.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from rastro_events.schema_export import sync_generated

__all__ = ["SERVICES", "main", "render_all"]

# service -> (module with build_app, settings class "module:Class")
SERVICES: dict[str, tuple[str, str]] = {
    "ingest": ("rastro_ingest.app", "rastro_ingest.settings:IngestSettings"),
    "normalization": ("rastro_normalization.app", "rastro_normalization.settings:NormalizationSettings"),
    "eta": ("rastro_eta.app", "rastro_eta.settings:EtaSettings"),
    "notification": ("rastro_notification.app", "rastro_notification.settings:NotificationSettings"),
    "dlq-replay": ("rastro_dlq_replay.app", "rastro_dlq_replay.settings:DlqReplaySettings"),
}


def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def render(service: str) -> str:
    app_module, settings_ref = SERVICES[service]
    settings = _load(settings_ref)()
    app = _load(f"{app_module}:build_app")(settings)
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_all() -> dict[str, str]:
    """File name under ``schemas/openapi/`` -> content."""
    return {f"{service}.json": render(service) for service in SERVICES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed documents drift")
    parser.add_argument("--dir", default="schemas/openapi", type=Path)
    args = parser.parse_args(argv)
    drift = sync_generated(render_all(), args.dir, check=args.check)
    if drift:
        print(
            "OpenAPI documents drift from the apps; run `make schemas`:\n  " + "\n  ".join(drift),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
