"""The committed OpenAPI documents match the apps, and ingest's own routes are documented completely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rastro_kit.openapi_export import SERVICES, render, render_all

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[4]
OPENAPI = ROOT / "schemas" / "openapi"
INGEST_OWN = ("/v1/events", "/v1/tenants")


def test_committed_openapi_documents_match_the_apps() -> None:
    drift = [
        name
        for name, content in render_all().items()
        if not (OPENAPI / name).exists() or (OPENAPI / name).read_text(encoding="utf-8") != content
    ]
    assert not drift, f"schemas/openapi/ drifts from the apps, run `make schemas`: {drift}"


def test_every_service_is_exported() -> None:
    assert set(SERVICES) == {"ingest", "normalization", "eta", "notification", "dlq-replay"}


def test_ingest_routes_have_examples_and_documented_problems() -> None:
    spec = json.loads(render("ingest"))
    checked = 0
    for path, operations in spec["paths"].items():
        if not path.startswith(INGEST_OWN):
            continue
        for method, op in operations.items():
            checked += 1
            where = f"{method.upper()} {path}"
            problems = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert {"401", "503"} <= set(problems), f"{where}: 401 and 503 undocumented"
            for status, response in problems.items():
                if "$ref" in response:  # one of the kit's shared problems (rastro_kit.openapi_problems)
                    response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                content = response.get("content", {}).get("application/problem+json")
                assert content and "example" in content, f"{where} {status}: no problem+json example"
            ok = [r for s, r in op["responses"].items() if s.startswith("2") and s != "204"]
            for response in ok:
                examples = [c for c in response["content"].values() if "example" in c]
                assert examples, f"{where}: no response example"
            if method in {"post", "delete"}:
                assert "429" in problems, f"{where}: rate limit undocumented"
    assert checked >= 7


def test_rate_limit_headers_documented_on_post_events() -> None:
    op = json.loads(render("ingest"))["paths"]["/v1/events"]["post"]
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} <= set(
        op["responses"]["429"]["headers"]
    )
    assert set(op["requestBody"]["content"]["application/json"]["examples"]) >= {"tracking", "batch"}
