"""Issue 8's acceptance, scaled for `make test` (the sizes are settings; see the README for 10,000):

1. poison records of every reason class, generated with hypothesis, injected into the main topics next
   to valid ones: no consumer stalls, every valid neighbour is processed, and exactly one dead letter per
   poison record is stored, with the right reason;
2. once the causes are fixed (a tenant status mapping through normalization's mappings API, the missing
   tenant created in ingest), a replay by filter at 500/s puts every shipment in the right state, nothing
   is applied twice, and the audit trail shows the jobs; a replay that fails again returns to its dead
   letter (replay count 1), never in a loop;
3. dlq-replay is killed (SIGKILL) in the middle of a replay job, restarted, and the job resumes: every
   dead letter is replayed exactly once in effect.

ingest and normalization run in-process from their composition roots; dlq-replay runs as its own process
(so that it can be killed) on a database and a consumer group of its own. The module is named to run
after the other dlq-replay modules: the group they share would otherwise start behind its backlog.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rastro_events import RawTrackingEvent, encode_event, headers_for, new_event, new_event_id
from rastro_events.topics import INGEST_UPSTREAM, ORDERS, TRACKING_RAW, dlq_topic, replay_topic
from rastro_ingest.app import build_app as build_ingest
from rastro_ingest.settings import IngestSettings
from rastro_kit.dead_letters import dead_letter_headers
from rastro_kit.testing import TopicReader, free_port, serve_app, wait_until
from rastro_normalization.app import build_app as build_normalization
from rastro_normalization.settings import NormalizationSettings

pytestmark = pytest.mark.integration


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


POISON = int(os.environ.get("RASTRO_DLQ_ACCEPTANCE_POISON", "1000"))
REPLAY_JOB = int(os.environ.get("RASTRO_DLQ_ACCEPTANCE_REPLAY", "1500"))
WAIT = 120 + POISON / 50  # seconds: generous on a shared 2-core machine
ADMIN = f"rk_admin_acc_{secrets.token_hex(8)}"
UNMAPPED = [f"ZZ-{n:02d}" for n in range(8)]  # codes the Correios table lacks


@dataclass
class DlqProcess:
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    async def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._spawn(port)
        async with httpx.AsyncClient(timeout=5) as client:

            async def ready() -> bool:
                assert self.process is not None and self.process.poll() is None, self.tail()
                try:
                    return (await client.get(self.url + "/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=90, interval=0.25, message="dlq-replay /readyz")

    def _spawn(self, port: int) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rastro_dlq_replay"],
                env={**self.env, "RASTRO_HTTP_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:]) if self.log.exists() else ""


@dataclass
class Stack:
    dlq: DlqProcess
    ingest: str
    normalization: str
    dlq_db: str
    main_db: str
    producer: AIOKafkaProducer
    bootstrap: str

    async def call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(method, url, headers={"Authorization": f"Bearer {ADMIN}"}, **kw)

    async def dead_letter_total(self, **params: str) -> int:
        response = await self.call("GET", self.dlq.url + "/v1/dead-letters/stats", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.call("GET", f"{self.dlq.url}/v1/replay-jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def finished(self, job_id: str) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            job = await self.job(job_id)
            return job if job["status"] == "completed" else None

        return dict(await wait_until(done, timeout=WAIT, interval=0.25, message=f"job {job_id}"))

    async def replay_by_filter(self, selection: dict[str, Any], rate: float, why: str) -> str:
        body = {"filter": selection, "reason": why, "rate_per_second": rate}
        response = await self.call("POST", self.dlq.url + "/v1/dead-letters/replay", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str,
    kafka_idempotence: bool,
    database_url: str,
    postgres_server_url: str,
    topics: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    name = f"rastro_dlq_acc_{secrets.token_hex(4)}"  # dlq-replay's own: its jobs are its alone
    admin = await asyncpg.connect(with_database(postgres_server_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    dlq_db = with_database(postgres_server_url, name)
    shared = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "RASTRO_KAFKA_IDEMPOTENCE": str(kafka_idempotence).lower(),
        "RASTRO_ADMIN_API_KEY": ADMIN,
        "RASTRO_MODE": "development",
        "RASTRO_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    dlq = DlqProcess(
        {**os.environ, **shared, "DATABASE_URL": dlq_db,
         "RASTRO_DLQ_REPLAY_CONSUMER_GROUP": f"dlq-replay-acc-{secrets.token_hex(4)}"},
        tmp_path_factory.mktemp("dlq-acceptance") / "dlq-replay.log",
    )  # fmt: skip
    ingest = build_ingest(IngestSettings(**shared, DATABASE_URL=database_url))
    normalization = build_normalization(NormalizationSettings(**shared, DATABASE_URL=database_url))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=kafka_idempotence, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        async with serve_app(ingest) as ingest_url, serve_app(normalization) as normalization_url:
            await dlq.start()
            for app in (ingest, normalization):
                runner = app.state.runtime.runners[0]
                await wait_until(runner.assigned.is_set, timeout=60, interval=0.2, message="group join")
            yield Stack(dlq, ingest_url, normalization_url, dlq_db, database_url, producer, kafka_bootstrap)
    finally:
        dlq.stop()
        await producer.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# -- poison, generated --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Poison:
    kind: str
    topic: str
    reason: str
    shape: Any  # what hypothesis chose; the bytes are built from it with a fresh tracking number


_MAIN = st.sampled_from([TRACKING_RAW, ORDERS])
# A carrier's description: any text Postgres can store (no NUL) and JSON can carry (no lone surrogate).
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_WRONG = st.one_of(
    st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip
POISONS = st.one_of(
    st.builds(Poison, st.just("truncated"), _MAIN, st.just("invalid_json"), st.floats(0, 0.999)),
    st.builds(
        Poison, st.just("non_utf8"), _MAIN, st.just("invalid_json"), st.tuples(st.binary(), st.binary())
    ),
    st.builds(
        Poison, st.just("wrong_type"), st.just(TRACKING_RAW), st.just("schema_violation"),
        st.tuples(st.sampled_from(["tracking_number", "status_code"]), _WRONG),
    ),
    st.builds(
        Poison, st.just("unknown_type"), _MAIN, st.just("unsupported_type"),
        st.tuples(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), st.integers(1, 99)),
    ),
    st.builds(
        Poison, st.just("unmapped"), st.just(TRACKING_RAW), st.just("unmapped_carrier_code"),
        st.tuples(st.sampled_from(UNMAPPED), _TEXT),
    ),
    st.builds(
        Poison, st.just("unknown_tenant"), st.just(INGEST_UPSTREAM), st.just("unknown_tenant"), _TEXT
    ),
)  # fmt: skip


def generate(count: int) -> list[Poison]:
    found: list[Poison] = []

    @settings(
        max_examples=count, database=None, phases=[Phase.generate], deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(POISONS)
    def collect(poison: Poison) -> None:
        found.append(poison)

    while len(found) < count:
        collect()
    return found[:count]


def raw_event(tenant: str, tracking: str, code: str, description: str | None = None) -> Any:
    payload = RawTrackingEvent(
        tracking_number=tracking,
        carrier="correios",
        status_code=code,
        description=description,
        occurred_at=datetime.now(UTC),
    )
    return new_event(payload, tenant_id=tenant, source="/tests/acceptance")


def build(poison: Poison, tenant: str, ghost: str, tracking: str) -> tuple[bytes, bytes, list[Any]]:
    """Key, value and headers of one poison record."""
    key = f"{tenant}/{tracking}".encode()
    event = raw_event(tenant, tracking, "PO-01")
    valid = encode_event(event)
    if poison.kind == "truncated":
        return key, valid[: int(len(valid) * poison.shape)], headers_for(event)
    if poison.kind == "non_utf8":  # starts as JSON text would, then a byte UTF-8 never has
        return key, b'{"id": "' + poison.shape[0] + b"\xff" + poison.shape[1], []
    if poison.kind == "wrong_type":
        body = json.loads(valid)
        body["data"][poison.shape[0]] = poison.shape[1]
        return key, json.dumps(body).encode(), headers_for(event)
    if poison.kind == "unknown_type":
        body = json.loads(valid) | {"type": f"rastro.poison{poison.shape[0]}.v{poison.shape[1]}"}
        return key, json.dumps(body).encode(), []
    if poison.kind == "unmapped":
        event = raw_event(tenant, tracking, poison.shape[0], poison.shape[1] or None)
        return key, encode_event(event), headers_for(event)
    item = {
        "tenant_id": ghost, "type": "tracking.event", "event_id": new_event_id(), "carrier": "correios",
        "tracking_number": tracking, "status_code": "PO-01", "occurred_at": datetime.now(UTC).isoformat(),
        "description": poison.shape or None,
    }  # fmt: skip
    return f"{ghost}/{tracking}".encode(), json.dumps(item).encode(), []


async def produce(
    producer: AIOKafkaProducer, records: list[tuple[str, bytes, bytes, list[Any]]]
) -> list[Any]:
    """Send in order, awaiting in batches; the (partition, offset) of each."""
    futures = [await producer.send(t, v, key=k, headers=h) for t, k, v, h in records]
    return list(await asyncio.gather(*futures))


async def db_rows(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


# -- 1 and 2 ------------------------------------------------------------------------------------------


async def test_poison_of_every_class_is_stored_exactly_once_and_replayed_once_fixed(stack: Stack) -> None:
    tenant, ghost = f"acc{secrets.token_hex(4)}", f"ghost{secrets.token_hex(4)}"
    poisons = generate(POISON)
    classes = Counter(p.kind for p in poisons)
    assert set(classes) == {
        "truncated",
        "non_utf8",
        "wrong_type",
        "unknown_type",
        "unmapped",
        "unknown_tenant",
    }
    assert min(classes.values()) >= POISON // 20, classes  # every class well represented
    records, expected, valid = [], [], []
    for n, poison in enumerate(poisons):
        key, value, headers = build(poison, tenant, ghost, f"P{n:06d}")
        records.append((poison.topic, key, value, headers))
        expected.append(poison)
        if n % 3 == 0:  # a valid neighbour, on the same topics and partitions
            event = raw_event(tenant, f"V{n:06d}", "PO-01")
            records.append(
                (TRACKING_RAW, f"{tenant}/V{n:06d}".encode(), encode_event(event), headers_for(event))
            )
            valid.append(f"V{n:06d}")
            expected.append(None)
    began = time.monotonic()
    sent = await produce(stack.producer, records)
    reason_at = {
        (r[0], m.partition, m.offset): p.reason
        for r, m, p in zip(records, sent, expected, strict=True)
        if p is not None
    }

    # Every valid neighbour is processed: no consumer stalled behind the poison.
    async def all_valid() -> bool:
        rows = await db_rows(
            stack.main_db, "SELECT count(*) AS n FROM normalization.shipments WHERE tenant_id = $1"
            " AND tracking_number LIKE 'V%'", tenant,
        )  # fmt: skip
        return int(rows[0]["n"]) == len(valid)

    await wait_until(all_valid, timeout=WAIT, interval=0.5, message=f"{len(valid)} valid neighbours")

    # Exactly one dead letter per poison record, with the right reason.
    async def stored() -> int:
        return await stack.dead_letter_total(tenant=tenant) + await stack.dead_letter_total(tenant=ghost)

    await wait_until(lambda: _at_least(stored, POISON), timeout=WAIT, interval=0.5, message="dead letters")
    exported: dict[tuple[str, int, int], str] = {}
    for who in (tenant, ghost):
        lines = await stack.call("GET", stack.dlq.url + "/v1/dead-letters/export", params={"tenant": who})
        for line in lines.text.splitlines():
            d = json.loads(line)
            exported[(d["original_topic"], d["original_partition"], d["original_offset"])] = d["reason"]
    assert exported == reason_at
    report(f"{POISON} poison records {dict(classes)} + {len(valid)} valid neighbours: all handled and stored"
           f" in {time.monotonic() - began:.1f} s")  # fmt: skip

    # Fix the causes, then replay by filter at 500/s.
    mapping = {"status": "in_transit"}
    for code in UNMAPPED:
        r = await stack.call("PUT", f"{stack.normalization}/v1/mappings/statuses/correios/{code}",
                             params={"tenant": tenant}, json=mapping)  # fmt: skip
        assert r.status_code in (200, 201), r.text
    r = await stack.call("POST", stack.ingest + "/v1/tenants", json={"id": ghost, "name": "was missing"})
    assert r.status_code == 201, r.text
    unmapped = [f"P{n:06d}" for n, p in enumerate(poisons) if p.kind == "unmapped"]
    lost = [f"P{n:06d}" for n, p in enumerate(poisons) if p.kind == "unknown_tenant"]
    jobs = [
        await stack.replay_by_filter({"tenant": tenant, "reason": "unmapped_carrier_code"}, 500, "ZZ mapped"),
        await stack.replay_by_filter({"tenant": ghost, "reason": "unknown_tenant"}, 500, "tenant created"),
    ]
    for job_id, count in zip(jobs, (len(unmapped), len(lost)), strict=True):
        job = await stack.finished(job_id)
        assert (job["total"], job["replayed"], job["skipped"]) == (count, count, 0)
        report(f"job of {count} at 500/s: {effective_rate(job):.0f}/s")
        trail = await stack.call("GET", stack.dlq.url + "/v1/dead-letters/audit", params={"job_id": job_id})
        assert [e["action"] for e in trail.json()["items"]] == ["replay_job_finished", "replay_job_created"]

    # Every replayed shipment reaches the mapped state, each event applied once.
    async def shipments_of(who: str, numbers: list[str]) -> list[Any] | None:
        rows = await db_rows(
            stack.main_db,
            "SELECT s.tracking_number, s.status, (SELECT count(*) FROM normalization.timeline_entries t"
            " WHERE t.tenant_id = s.tenant_id AND t.tracking_number = s.tracking_number) AS entries"
            " FROM normalization.shipments s WHERE s.tenant_id = $1 AND s.tracking_number = ANY($2::text[])",
            who, numbers,
        )  # fmt: skip
        return rows if len(rows) == len(numbers) else None

    for who, numbers in ((tenant, unmapped), (ghost, lost)):
        rows = await wait_until(lambda w=who, n=numbers: shipments_of(w, n), timeout=WAIT, interval=0.5,
                                message=f"{len(numbers)} replayed shipments of {who}")  # fmt: skip
        assert {(r["status"], r["entries"]) for r in rows} == {("in_transit", 1)}

    # A replay of what is still broken fails again: back to its dead letter, counted, not looping.
    broken = sum(1 for p in poisons if p.reason == "schema_violation")
    again = await stack.replay_by_filter({"tenant": tenant, "reason": "schema_violation"}, 500, "try again")
    assert (await stack.finished(again))["replayed"] == broken

    async def failed_again() -> bool:
        params = {"tenant": tenant, "status": "failed_after_replay"}
        return await stack.dead_letter_total(**params) == broken

    await wait_until(failed_again, timeout=WAIT, interval=0.5, message="replays dead-lettered again")
    assert await stored() == POISON  # still one dead letter per poison record
    params = {"tenant": tenant, "status": "failed_after_replay", "limit": 500}
    page = await stack.call("GET", stack.dlq.url + "/v1/dead-letters", params=params)
    assert {d["replay_count"] for d in page.json()["items"]} == {1}
    assert (await stack.job(again))["failed"] == broken


def report(line: str) -> None:
    print(f"\n[dlq acceptance] {line}")  # seen with pytest -s


def effective_rate(job: dict[str, Any]) -> float:
    took = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    return float(job["replayed"]) / max(took.total_seconds(), 1e-3)


async def _at_least(probe: Any, count: int) -> bool:
    found = await probe()
    assert found <= count, f"{found} dead letters stored for {count} poison records"
    return bool(found == count)


# -- 3 ------------------------------------------------------------------------------------------------


async def test_a_replay_job_resumes_after_the_service_is_killed_and_replays_each_once(stack: Stack) -> None:
    tenant = f"kill{secrets.token_hex(4)}"
    start = datetime.now(UTC) - timedelta(minutes=5)
    first = secrets.randbelow(10**12) + 10**12  # original offsets no earlier run used
    records = []
    for n in range(REPLAY_JOB):
        event = raw_event(tenant, f"K{n:06d}", "PO-01")
        headers = dead_letter_headers(
            headers_for(event), topic=TRACKING_RAW, partition=0, offset=first + n, group="normalization",
            reason="handler_error", message="the database said no",
        )  # fmt: skip
        records.append(
            (dlq_topic("normalization"), f"{tenant}/K{n:06d}".encode(), encode_event(event), headers)
        )
    await produce(stack.producer, records)

    async def stored() -> bool:
        return await stack.dead_letter_total(tenant=tenant) == REPLAY_JOB

    await wait_until(stored, timeout=WAIT, interval=0.5, message=f"{REPLAY_JOB} dead letters")
    rate = max(REPLAY_JOB / 6, 50)  # about six seconds of work
    job_id = await stack.replay_by_filter({"tenant": tenant, "since": start.isoformat()}, rate, "db fixed")

    async def under_way() -> bool:
        return (await stack.job(job_id))["replayed"] >= REPLAY_JOB // 5

    await wait_until(under_way, timeout=WAIT, interval=0.05, message="the job under way")
    stack.dlq.kill()
    [row] = await db_rows(
        stack.dlq_db, "SELECT status, replayed FROM dlq_replay.replay_jobs WHERE id = $1", job_id
    )
    assert row["status"] == "running" and 0 < row["replayed"] < REPLAY_JOB, dict(row)

    await stack.dlq.start()
    job = await stack.finished(job_id)
    assert (job["total"], job["replayed"], job["skipped"]) == (REPLAY_JOB, REPLAY_JOB, 0)
    [counts] = await db_rows(
        stack.dlq_db,
        "SELECT count(*) AS replays, count(DISTINCT dead_letter_id) AS letters FROM dlq_replay.replays"
        " WHERE job_id = $1", job_id,
    )  # fmt: skip
    assert (counts["replays"], counts["letters"]) == (REPLAY_JOB, REPLAY_JOB)

    # On the topic: each dead letter under one replay id (the relay may have re-sent some after the kill).
    replay_ids: dict[bytes, set[bytes]] = defaultdict(set)
    async with TopicReader(stack.bootstrap, replay_topic("normalization")) as reader:
        mine = await reader.wait_for(
            lambda r: r.key.startswith(f"{tenant}/".encode()), REPLAY_JOB, timeout=WAIT
        )
    for record in mine:
        replay_ids[record.key].add(dict(record.headers)["rastro-replay-id"])
    assert len(replay_ids) == REPLAY_JOB and {len(ids) for ids in replay_ids.values()} == {1}

    # In effect: normalization applied each replayed event once.
    async def applied() -> list[Any] | None:
        rows = await db_rows(
            stack.main_db,
            "SELECT count(*) AS entries, count(DISTINCT tracking_number) AS shipments"
            " FROM normalization.timeline_entries WHERE tenant_id = $1", tenant,
        )  # fmt: skip
        return rows if rows[0]["shipments"] == REPLAY_JOB else None

    [effect] = await wait_until(applied, timeout=WAIT, interval=0.5, message="replays applied")
    assert effect["entries"] == REPLAY_JOB
    report(
        f"kill/resume: job of {REPLAY_JOB} at {rate:.0f}/s killed at {row['replayed']} replayed;"
        f" {len(mine)} records on the replay topic, {REPLAY_JOB} distinct replay ids, each applied once"
    )
