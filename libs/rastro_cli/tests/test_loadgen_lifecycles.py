"""The load generator's lifecycles and feed: deterministic, realistic shares, and each template's
expected status is what the normalization state machine computes from its events in any order."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from rastro_cli.loadgen import TEMPLATES, Mix, lifecycles, read_manifest, send_plan, write_manifest
from rastro_events.ids import scoped_event_id
from rastro_normalization.adapters.carriers import load_carrier_table
from rastro_normalization.domain.state_machine import build_shipment
from rastro_normalization.domain.timeline import TimelineEntry

pytestmark = pytest.mark.unit


def test_same_seed_same_feed_and_every_tenant_gets_shipments() -> None:
    a = send_plan(lifecycles(tenants=["t1", "t2", "t3"], shipments=300, seed=4), seed=4)
    b = send_plan(lifecycles(tenants=["t1", "t2", "t3"], shipments=300, seed=4), seed=4)
    assert a.sends == b.sends
    assert Counter(life.tenant for life in a.lifecycles) == {"t1": 100, "t2": 100, "t3": 100}


def test_shares_of_templates_and_perturbations_are_realistic() -> None:
    found = lifecycles(tenants=["t"], shipments=4000, seed=2)
    kinds = Counter(life.kind for life in found)
    assert 0.50 < kinds["delivered"] / 4000 < 0.60 and kinds["poison"] > 0
    plan = send_plan(found, seed=2)
    events = sum(len(life.events) for life in found)
    ids = Counter((t, b["event_id"]) for t, b in plan.sends)
    client_retries = sum(n - 1 for n in ids.values())
    carrier_repeats = sum(1 for _, b in plan.sends if b["event_id"].endswith("-again"))
    assert 0.01 < client_retries / events < 0.05 and 0.01 < carrier_repeats / events < 0.05
    assert len(plan.sends) == events + client_retries + carrier_repeats


def test_each_shipment_keeps_its_own_order_unless_shuffled() -> None:
    found = lifecycles(tenants=["t"], shipments=500, seed=3)
    plan = send_plan(found, seed=3, mix=Mix(out_of_order=0, client_retries=0, carrier_repeats=0))
    position = {b["event_id"]: i for i, (_, b) in enumerate(plan.sends)}
    for life in found:
        sent = [position[e["event_id"]] for e in life.events]
        assert sent == sorted(sent)


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_template_expected_status_holds_for_any_arrival_order(kind: str) -> None:
    codes, expected, _ = TEMPLATES[kind]
    table = load_carrier_table("correios")
    entries = []
    for i, code in enumerate(codes):
        entry = table.lookup(code)
        assert entry is not None, code
        entries.append(
            TimelineEntry(
                event_id=f"e{i}",
                carrier="correios",
                status_code=code,
                status=entry.status,
                substatus=entry.substatus,
                description=None,
                occurred_at=datetime.fromisoformat(f"2026-11-{10 + i:02d}T10:00:00-03:00"),
            )
        )
    rng = random.Random(kind)
    for _ in range(20):
        rng.shuffle(entries)
        assert build_shipment("t", "X", entries).status.value == expected


def test_manifest_lists_the_envelope_ids_ingest_will_give(tmp_path: Path) -> None:
    found = lifecycles(tenants=["a", "b"], shipments=50, seed=5)
    plan = send_plan(found, seed=5)
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, plan)
    lines = read_manifest(path)
    assert len(lines) == 50 and all(json.dumps(line) for line in lines)
    first = lines[0]
    life = found[0]
    assert first["distinct_events"] == len(life.events)
    assert scoped_event_id(life.tenant, life.events[0]["event_id"]) in first["event_ids"]
    # the same client ids under two tenants are two different events
    assert scoped_event_id("a", "x") != scoped_event_id("b", "x")
