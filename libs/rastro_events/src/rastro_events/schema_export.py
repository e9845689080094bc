"""Generate ``schemas/<event>/v<N>.json`` (JSON Schema of every payload) and ``schemas/asyncapi.yaml``.

python -m rastro_events.schema_export            # write
python -m rastro_events.schema_export --check    # exit 1 if the committed files drift from the models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from rastro_events.envelope import Envelope
from rastro_events.registry import PAYLOAD_TYPES
from rastro_events.topics import all_topics

__all__ = ["render_all", "sync_generated"]

SCHEMA_BASE = "https://rastro.dev/schemas"


def _payload_schema(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"{SCHEMA_BASE}/{model.event_name}/v{model.major}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["x-cloudevents-type"] = model.ce_type()
    schema["x-topic"] = model.topic
    return schema


def _asyncapi() -> dict[str, Any]:
    by_topic: dict[str, list[Any]] = {}
    for model in PAYLOAD_TYPES.values():
        by_topic.setdefault(model.topic, []).append(model)
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in all_topics():
        models = by_topic.get(spec.name, [])
        channels[spec.name] = {
            "address": spec.name,
            "description": spec.description or None,
            "x-partitions": spec.partitions,
            "x-configs": dict(spec.configs) or None,
            "messages": {m.event_name: {"$ref": f"#/components/messages/{m.event_name}"} for m in models}
            or None,
        }
        channels[spec.name] = {k: v for k, v in channels[spec.name].items() if v is not None}
        for m in models:
            messages[m.event_name] = {
                "name": m.ce_type(),
                "contentType": "application/cloudevents+json",
                "payload": {"$ref": f"{m.event_name}/v{m.major}.json"},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Rastro events",
            "version": "1.0.0",
            "description": "Every record value is a CloudEvents 1.0 JSON envelope (see envelope.json) whose "
            "`data` is the payload named by its `type`. Record key: `<tenant>/<shipment key>`.",
        },
        "channels": channels,
        "components": {"messages": messages},
    }


def render_all() -> dict[str, str]:
    """Relative path -> file content, for everything this command owns under ``schemas/``."""
    files: dict[str, str] = {}
    for model in PAYLOAD_TYPES.values():
        files[f"{model.event_name}/v{model.major}.json"] = (
            json.dumps(_payload_schema(model), indent=2, ensure_ascii=False) + "\n"
        )
    envelope = Envelope.model_json_schema()
    envelope["$id"] = f"{SCHEMA_BASE}/envelope.json"
    files["envelope.json"] = json.dumps(envelope, indent=2, ensure_ascii=False) + "\n"
    files["asyncapi.yaml"] = yaml.safe_dump(_asyncapi(), sort_keys=False, allow_unicode=True)
    return files


def sync_generated(files: dict[str, str], directory: Path, *, check: bool) -> list[str]:
    """Write generated files under ``directory``, or with ``check`` list those that drift from it."""
    drift = []
    for rel, content in files.items():
        path = directory / rel
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                drift.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    return drift


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed schemas drift")
    parser.add_argument("--dir", default="schemas", type=Path)
    args = parser.parse_args(argv)
    drift = sync_generated(render_all(), args.dir, check=args.check)
    if drift:
        print("schemas drift from the models; run `make schemas`:\n  " + "\n  ".join(drift), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
