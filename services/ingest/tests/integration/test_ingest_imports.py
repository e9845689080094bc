"""CSV import over real HTTP, with the real broker and Postgres."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from rastro_cli.main import app as cli
from rastro_events import decode_event
from rastro_events.topics import TRACKING_RAW
from rastro_ingest.app import build_app
from rastro_ingest.imports.inbox import Inbox
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import TopicReader, serve_app

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
MAPPING = {
    "tracking_number": "Rastreio",
    "carrier": "Transportadora",
    "status_code": "Codigo",
    "description": "Descricao",
    "occurred_at": "DataHora",
    "location.city": "Cidade",
    "location.state": "UF",
}
ERP_ROWS = [
    "Rastreio;Transportadora;Codigo;Descricao;DataHora;Cidade;UF;Vendedor",
    "{n}1BR;correios;PO-01;Objeto postado;21/11/2026 09:10;Ribeirão Preto;SP;Zé",
    "{n}1BR;correios;RO-01;Objeto em trânsito;22/11/2026 18:00;São Paulo;SP;Zé",
    "{n}2BR;correios;;Sem código;22/11/2026 18:00;Goiânia;GO;Zé",
    "{n}1BR;correios;BDE-01;Objeto entregue ao destinatário;23/11/2026 14:05;São Paulo;SP;Zé",
    "{n}3BR;correios;PO-01;Data ruim;ontem;Belém;PA;Zé",
    "{n}1BR;correios;BDE-01;Objeto entregue ao destinatário;23/11/2026 14:05;São Paulo;SP;Zé",
]


@pytest.fixture(scope="module")
def app(kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]) -> FastAPI:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    return build_app(settings)


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=120) as c:
        yield c


async def new_tenant(client: httpx.AsyncClient, scopes: list[str] | None = None) -> tuple[str, str]:
    tenant = f"t{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Test shop"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/tenants/{tenant}/keys", headers=admin, json={"name": "t", "scopes": scopes or ["events:write"]}
    )
    assert r.status_code == 201, r.text
    return tenant, r.json()["key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def erp_file(prefix: str) -> bytes:
    return "\r\n".join(row.format(n=prefix) for row in ERP_ROWS).encode("latin-1")


async def import_erp(client: httpx.AsyncClient, key: str, body: bytes) -> dict[str, Any]:
    params = {"mapping": json.dumps(MAPPING), "encoding": "latin-1", "timezone": "America/Sao_Paulo"}
    headers = bearer(key) | {"content-type": "text/csv"}
    r = await client.post("/v1/imports", params=params, content=body, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_erp_export_with_semicolons_and_latin1_imports_once(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    tenant, key = await new_tenant(client)
    prefix = f"ERP{secrets.token_hex(3).upper()}"
    job = await import_erp(client, key, erp_file(prefix))
    assert job["status"] == "completed" and job["options"]["delimiter"] == ";"
    assert (job["rows_total"], job["rows_accepted"], job["rows_rejected"]) == (6, 4, 2)
    assert job["rows_duplicate"] == 1 and job["events_enqueued"] == 3  # row 7 repeats row 5
    assert job["options"]["ignored_columns"] == ["Vendedor"]

    errors = await client.get(job["links"]["errors"], headers=bearer(key))
    assert errors.status_code == 200 and errors.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(errors.text)))
    assert rows[0] == ["row", "field", "message"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("4", "status_code"), ("6", "occurred_at")]

    again = await import_erp(client, key, erp_file(prefix))
    assert again["id"] != job["id"] and again["rows_duplicate"] == 4 and again["events_enqueued"] == 0
    # The outbox publishes in insertion order: once a marker sent after the re-upload is on the topic,
    # anything the re-upload had enqueued would be there too.
    marker = await client.post(
        "/v1/events",
        headers=bearer(key),
        json={
            "type": "tracking.event",
            # same key as the imported events, hence the same partition: once the marker is read,
            # everything published before it for this shipment has been read too
            "tracking_number": f"{prefix}1BR",
            "status_code": "PO-01",
            "occurred_at": "2026-11-24T10:00:00-03:00",
        },
    )
    marker_id = marker.json()["events"][0]["id"].encode()
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        await reader.wait_for(lambda rec: dict(rec.headers).get("ce_id") == marker_id)
        mine = [r for r in reader.records if r.key.startswith(f"{tenant}/{prefix}".encode())]
    assert len(mine) == 4 and len({dict(r.headers)["ce_id"] for r in mine}) == 4
    delivered = [decode_event(r.value)[1] for r in mine if b"BDE-01" in r.value]
    assert delivered[0].location.city == "São Paulo"  # type: ignore[attr-defined]
    assert delivered[0].occurred_at.isoformat() == "2026-11-23T14:05:00-03:00"  # type: ignore[attr-defined]


async def test_multipart_upload_with_options_as_form_fields(client: httpx.AsyncClient) -> None:
    _, key = await new_tenant(client)
    body = "order_id,occurred_at,destination.city\nP1,2026-11-23T10:00:00Z,Recife\nP2,,Natal\n"
    r = await client.post(
        "/v1/imports",
        headers=bearer(key),
        files={"file": ("pedidos.csv", body.encode(), "text/csv")},
        data={"type": "order.created"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["filename"] == "pedidos.csv" and job["options"]["type"] == "order.created"
    assert (job["rows_accepted"], job["rows_rejected"]) == (1, 1)
    listed = await client.get("/v1/imports", headers=bearer(key))
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    assert (await client.get(job["links"]["self"], headers=bearer(key))).json()["rows_total"] == 2


async def test_unusable_files_are_refused_before_a_job_exists(client: httpx.AsyncClient) -> None:
    _, key = await new_tenant(client)
    csv_type = bearer(key) | {"content-type": "text/csv"}
    cases = [
        ({"mapping": '{"tracking_number": "Rastreio"}'}, b"Tracking,Code\nX,PO-01\n", "mapping"),
        ({}, "Descrição,tracking_number\n".encode("latin-1"), "encoding"),
        ({"encoding": "ebcdic"}, b"tracking_number\nX\n", "encoding"),
        ({"type": "parcel.teleported"}, b"tracking_number\nX\n", "type"),
        ({}, b"", "(body)"),
    ]
    for params, body, field in cases:
        r = await client.post("/v1/imports", params=params, content=body, headers=csv_type)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = await client.post("/v1/imports", json={"a": 1}, headers=bearer(key))
    assert r.status_code == 415
    assert (await client.get("/v1/imports", headers=bearer(key))).json()["items"] == []


async def test_tenants_cannot_see_or_write_each_others_imports(client: httpx.AsyncClient) -> None:
    tenant_a, key_a = await new_tenant(client)
    _, key_b = await new_tenant(client)
    _, read_only = await new_tenant(client, scopes=["shipments:read"])
    job = await import_erp(client, key_a, erp_file("ISO"))
    for path in (f"/v1/imports/{job['id']}", f"/v1/imports/{job['id']}/errors"):
        assert (await client.get(path, headers=bearer(key_b))).status_code == 404
        assert (await client.get(path, headers=bearer(ADMIN))).status_code == 200
    assert (await client.get(f"/v1/imports?tenant={tenant_a}", headers=bearer(key_b))).status_code == 404
    assert (await client.get("/v1/imports", headers=bearer(key_b))).json()["items"] == []
    r = await client.post(
        f"/v1/imports?tenant={tenant_a}", content=b"tracking_number\n", headers=bearer(key_b)
    )
    assert r.status_code == 403
    assert (await client.get("/v1/imports", headers=bearer(read_only))).status_code == 403
    assert (await client.post("/v1/imports", content=b"x")).status_code == 401


async def test_cli_streams_a_file_and_prints_the_summary(client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, key = await new_tenant(client)
    path = tmp_path / "export.csv"
    path.write_bytes(erp_file("CLI"))
    args = ["import", str(path), "--mapping", json.dumps(MAPPING), "--encoding", "latin-1"]
    args += ["--timezone", "America/Sao_Paulo", "--base-url", str(client.base_url), "--api-key", key]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "rows rejected" in result.output
    assert "4,status_code," in result.output


async def generated_rows(count: int, distinct: int) -> AsyncIterator[bytes]:
    yield b"tracking_number,carrier,status_code,description,occurred_at,location.city\n"
    piece: list[str] = []
    for i in range(count):
        piece.append(
            f"MEM{i % distinct:08d}BR,correios,RO-01,Em transito,2026-11-22T18:00:00-03:00,Sao Paulo\n"
        )
        if len(piece) == 2000:
            yield "".join(piece).encode()
            piece.clear()
    yield "".join(piece).encode()


def peak_rss_reset() -> int:
    """Reset this process's peak RSS (Linux ``clear_refs``) and return the current RSS, in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _status_kib(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{name} not in /proc/self/status")


async def test_a_100k_row_stream_imports_in_bounded_memory(client: httpx.AsyncClient) -> None:
    # Rows repeat 1,000 distinct events: every row is still read, validated and keyed, but the shared
    # raw topic (which other tests read from the start) gets 1,000 records, not 100,000. Held in memory,
    # 100,000 rows would take well over 32 MiB as Python objects; streamed, the peak grows a few MiB.
    _, key = await new_tenant(client)
    before = peak_rss_reset()
    r = await client.post(
        "/v1/imports",
        content=generated_rows(100_000, 1000),
        headers=bearer(key) | {"content-type": "text/csv"},
    )
    growth_mib = (_status_kib("VmHWM") - before) / 1024
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["rows_total"], job["rows_accepted"], job["events_enqueued"]) == (100_000, 100_000, 1000)
    assert job["bytes_received"] > 7_500_000
    assert growth_mib < 32, f"peak RSS grew by {growth_mib:.0f} MiB while importing 100,000 rows"


EDI = Path(__file__).parents[1] / "fixtures" / "edi"
OCOREN_ORDERS = {  # invoice number -> order; 00987656 has no order (its occurrence cannot be matched)
    "00123456": "PED-1",
    "00123457": "PED-2",
    "00123458": "PED-3",
    "00987654": "PED-4",
    "00987655": "PED-5",
}
OCOREN50_KEYS = {  # 5.0 lines name the NF-e access key: two orders known only by key, one by number
    "35260311222333000181550030005550011405123458": "PED-51",
    "35260311222333000181550030005550021702345614": "PED-52",
}


async def orders_with_invoices(client: httpx.AsyncClient, key: str, prefix: str) -> dict[str, str]:
    """invoice.issued + order.shipped for the fixtures' invoices; order id -> tracking number."""
    events: list[dict[str, Any]] = []
    tracking: dict[str, str] = {}

    def order(order_id: str, **invoice: str) -> None:
        tracking[order_id] = f"{prefix}{order_id.replace('-', '')}BR"
        at = "2026-03-10T09:00:00-03:00"
        events.append({"type": "invoice.issued", "order_id": order_id, "occurred_at": at, **invoice})
        events.append(
            {
                "type": "order.shipped",
                "order_id": order_id,
                "occurred_at": at,
                "tracking_number": tracking[order_id],
                "carrier": "jadlog",
            }
        )

    for number, order_id in OCOREN_ORDERS.items():
        order(order_id, invoice_number=number)
    for invoice_key, order_id in OCOREN50_KEYS.items():
        order(order_id, invoice_key=invoice_key)
    order("PED-53", invoice_number="555003")
    r = await client.post("/v1/events", headers=bearer(key), json={"events": events})
    assert r.status_code == 202, r.text
    return tracking


async def import_edi(client: httpx.AsyncClient, key: str, name: str, **params: str) -> httpx.Response:
    return await client.post(
        "/v1/imports",
        params={"format": "edi", "filename": name, **params},
        headers=bearer(key) | {"content-type": "text/plain"},
        content=(EDI / name).read_bytes(),
    )


async def test_ocoren_files_match_their_invoices_publish_once_and_malformed_ones_publish_nothing(
    client: httpx.AsyncClient, kafka_bootstrap: str
) -> None:
    tenant, key = await new_tenant(client)
    prefix = f"OC{secrets.token_hex(3).upper()}"
    tracking = await orders_with_invoices(client, key, prefix)

    r = await import_edi(client, key, "ocoren31_ok.txt")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["options"]["format"] == "ocoren-3.1" and job["options"]["sender"]
    assert (job["rows_read"], job["rows_accepted"], job["rows_rejected"]) == (6, 5, 1)
    errors = list(
        csv.reader(io.StringIO((await client.get(job["links"]["errors"], headers=bearer(key))).text))
    )
    assert len(errors) == 2 and errors[1][1] == "invoice" and "no order with invoice 2-987656" in errors[1][2]

    again = (await import_edi(client, key, "ocoren31_ok.txt")).json()
    assert again["rows_duplicate"] == 5 and again["events_enqueued"] == 0  # re-importing changes nothing

    r = await import_edi(client, key, "ocoren50_ok.txt", carrier="jadlog")
    assert r.status_code == 202, r.text
    assert r.json()["options"]["format"] == "ocoren-5.0" and r.json()["rows_accepted"] == 4

    bad = await import_edi(client, key, "ocoren31_bad_date.txt")
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    problem = bad.json()
    assert problem["type"].endswith("/invalid-edi")
    assert [(e["line"], e["column"]) for e in problem["errors"]] == [(4, 31), (5, 39)]
    assert problem["job"]["status"] == "failed" and problem["job"]["events_enqueued"] == 0
    for broken, where in (("ocoren31_wrong_length.txt", (4, 121)), ("ocoren31_truncated.txt", (5, 31))):
        r = await import_edi(client, key, broken)
        assert r.status_code == 422 and where in [(e["line"], e["column"]) for e in r.json()["errors"]]

    # What reached the topic: the 5 + 4 matched occurrences, once, on their shipments' keys; nothing
    # of the malformed files (whose lines name the same invoices). A marker sent last on a shipment's
    # key proves everything before it on that partition has been read.
    marker = await client.post(
        "/v1/events",
        headers=bearer(key),
        json={
            "type": "tracking.event",
            "tracking_number": tracking["PED-1"],
            "carrier": "jadlog",
            "status_code": "EMISSAO",
            "occurred_at": "2026-03-20T10:00:00-03:00",
        },
    )
    marker_id = marker.json()["events"][0]["id"].encode()
    async with TopicReader(kafka_bootstrap, TRACKING_RAW) as reader:
        await reader.wait_for(lambda rec: dict(rec.headers).get("ce_id") == marker_id)
        await reader.wait_for(
            lambda _: sum(r.key.startswith(f"{tenant}/".encode()) for r in reader.records) >= 10
        )
        mine = [decode_event(r.value)[1] for r in reader.records if r.key.startswith(f"{tenant}/".encode())]
    edi = [e for e in mine if e.status_code.startswith("OCOREN-")]  # type: ignore[attr-defined]
    assert len(edi) == 9
    by_order = {e.order_id: e for e in edi if e.order_id != "PED-51"}  # type: ignore[attr-defined]
    first = by_order["PED-1"]
    assert (first.tracking_number, first.status_code) == (tracking["PED-1"], "OCOREN-01")  # type: ignore[attr-defined]
    assert first.carrier == "jadlog"  # as its order.shipped named it  # type: ignore[attr-defined]
    assert first.occurred_at.isoformat() == "2026-03-14T10:15:00-03:00"  # type: ignore[attr-defined]
    assert by_order["PED-5"].description == "Devolução ao remetente após três tentativas"  # type: ignore[attr-defined]
    assert by_order["PED-4"].raw["carrier_name"] == "EXPRESSO SERRA GAÚCHA LTDA"  # Latin-1  # type: ignore[attr-defined]
    assert {e.carrier for e in edi if e.order_id in ("PED-51", "PED-52", "PED-53")} == {"jadlog"}  # type: ignore[attr-defined]


async def test_x12_214_imports_with_its_997_and_bad_counts_are_refused(client: httpx.AsyncClient) -> None:
    _, key = await new_tenant(client)
    r = await import_edi(client, key, "x12_214_ok.edi", timezone="America/New_York")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["options"]["format"] == "x12-214" and (job["rows_read"], job["rows_accepted"]) == (8, 8)
    ack = await client.get(job["links"]["acknowledgement"], headers=bearer(key))
    assert ack.status_code == 200 and ack.headers["content-type"].startswith("application/edi-x12")
    assert ack.text.startswith("ISA*") and "ST*997*" in ack.text and "AK5*A" in ack.text

    bad = await import_edi(client, key, "x12_214_bad_counts.edi")
    assert bad.status_code == 422 and {e["line"] for e in bad.json()["errors"]} >= {25, 46}
    refused = await client.get(bad.json()["job"]["links"]["acknowledgement"], headers=bearer(key))
    assert "AK5*R" in refused.text and "AK9*R" in refused.text

    csv_job = (await import_erp(client, key, erp_file("NOACK"))).get("links", {})
    assert "acknowledgement" not in csv_job
    r = await client.post(
        "/v1/imports", params={"format": "edi"}, headers=bearer(key), content=b"just some text\n"
    )
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-edi") and "job" not in r.json()
    r = await client.post("/v1/imports", params={"format": "pdf"}, headers=bearer(key), content=b"x")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "format"


async def test_the_inbox_folder_imports_each_file_once_and_files_it_away(
    client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
) -> None:
    tenant, key = await new_tenant(client)
    await orders_with_invoices(client, key, f"IN{secrets.token_hex(3).upper()}")
    folder = tmp_path / tenant
    folder.mkdir()
    (folder / "ocoren.txt").write_bytes((EDI / "ocoren31_ok.txt").read_bytes())
    (folder / "broken.txt").write_bytes((EDI / "ocoren31_truncated.txt").read_bytes())
    (folder / "upload.txt.part").write_bytes(b"still being written")
    (folder / "export.csv").write_bytes(
        b"tracking_number,carrier,status_code,occurred_at\nAB1BR,correios,PO-01,2026-03-01T10:00:00-03:00\n"
    )
    (tmp_path / "nobody").mkdir()
    (tmp_path / "nobody" / "stray.txt").write_bytes((EDI / "ocoren31_ok.txt").read_bytes())
    inbox = Inbox(app.state.runtime.pool, tmp_path, settle_s=0)

    reports = {r["file"]: r for r in await inbox.scan()}
    assert set(reports) == {"ocoren.txt", "broken.txt", "export.csv", "stray.txt"}
    assert reports["ocoren.txt"]["rows_accepted"] == 5 and reports["ocoren.txt"]["format"] == "ocoren-3.1"
    assert (
        reports["broken.txt"]["errors"][0]["line"] == 5 and reports["broken.txt"]["errors"][0]["column"] == 31
    )
    assert reports["export.csv"]["rows_accepted"] == 1 and reports["export.csv"]["format"] == "csv"
    assert "unknown tenant" in reports["stray.txt"]["error"]
    # imported, with its one unmatched line in the report: done/; refused whole: failed/
    assert sorted(p.name for p in (folder / "failed").iterdir()) == ["broken.txt", "broken.txt.report.json"]
    assert sorted(p.name for p in (folder / "done").iterdir()) == [
        "export.csv",
        "export.csv.report.json",
        "ocoren.txt",
        "ocoren.txt.report.json",
    ]
    saved = json.loads((folder / "done" / "ocoren.txt.report.json").read_text())
    assert saved["id"] == reports["ocoren.txt"]["id"] and saved["errors"][0]["field"] == "invoice"
    assert [p.name for p in folder.iterdir() if p.is_file()] == ["upload.txt.part"]

    (folder / "ocoren.txt").write_bytes((EDI / "ocoren31_ok.txt").read_bytes())  # dropped again
    (folder / "x12.edi").write_bytes((EDI / "x12_214_ok.edi").read_bytes())
    reports = {r["file"]: r for r in await inbox.scan()}
    assert reports["ocoren.txt"]["rows_duplicate"] == 5 and reports["ocoren.txt"]["events_enqueued"] == 0
    assert (folder / "done" / "ocoren.txt.1").exists()  # the earlier one is kept
    assert "AK5*A" in (folder / "done" / "x12.edi.997").read_text()
    assert await inbox.scan() == []  # nothing left to take


async def test_cli_imports_an_x12_file_and_saves_its_997(client: httpx.AsyncClient, tmp_path: Path) -> None:
    _, key = await new_tenant(client)
    path, ack = tmp_path / "status.edi", tmp_path / "status.997"
    path.write_bytes((EDI / "x12_214_ok.edi").read_bytes())
    args = ["import", str(path), "--ack", str(ack), "--base-url", str(client.base_url), "--api-key", key]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and ack.read_text().startswith("ISA*")  # .edi: EDI by default
    assert "AK5*A" in ack.read_text()
    bad = tmp_path / "broken.txt"
    bad.write_bytes((EDI / "ocoren31_truncated.txt").read_bytes())
    args = ["import", str(bad), "--base-url", str(client.base_url), "--api-key", key]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 1 and "failed" in result.output and "5,column 31" in result.output
