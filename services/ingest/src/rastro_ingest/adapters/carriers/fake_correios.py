"""A local fake of the Correios REST API, for tests and the ``make run`` demo (no real carrier is
reachable from here).

- ``POST /token/v1/autentica[/cartaopostagem]``: any Basic credentials get a token (1 h).
- ``GET /srorastro/v1/objetos?codigosObjetos=…&resultado=T``: every tracking number progresses through
  posted -> in transit (twice) -> out for delivery -> delivered, one step every ``step_s`` seconds from
  the fake's start, in the SRO REST shape; numbers starting with ``XX`` are "not found" (SRO-020), and
  so is every number outside ``known_prefixes`` when that is given (the ``make run`` demo knows only
  its own ``PL…`` numbers, so shipments posted by hand are not joined by invented events).
- Throttling: more than ``rate_per_s`` requests in one calendar second -> 429 with ``Retry-After: 1``.
- Failing on demand: ``POST /__admin/failure {"status": 503}`` makes every API call answer that status
  until ``DELETE /__admin/failure``; ``GET /__admin/stats`` counts requests, 429s and the busiest second.

Run it alone: ``python -m rastro_ingest.adapters.carriers.fake_correios --port 8010 --rate 5 --step 60``.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

__all__ = ["FakeCorreios", "main"]

_BRASILIA = timezone(timedelta(hours=-3))
_AMAZON = timezone(timedelta(hours=-4))  # SRO times are the unit's local time
_CITIES = (
    ("CURITIBA", "PR"),
    ("SAO PAULO", "SP"),
    ("RECIFE", "PE"),
    ("MANAUS", "AM"),
    ("PORTO ALEGRE", "RS"),
)
_HUB = ("CAJAMAR", "SP")


class FakeCorreios:
    def __init__(
        self,
        *,
        rate_per_s: float = 10.0,
        step_s: float = 60.0,
        started_at: datetime | None = None,
        known_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.rate_per_s, self.step_s = rate_per_s, step_s
        self.known_prefixes = tuple(p.upper() for p in known_prefixes)
        self.started_at = (started_at or datetime.now(UTC)).replace(microsecond=0)
        self.failing_status: int | None = None
        self.arrivals: list[float] = []
        """Wall-clock time of every API request, throttled or not."""
        self.throttled = 0
        self.failed = 0
        self._window: deque[float] = deque()
        self.app = self._build()

    def busiest_second(self) -> int:
        return max(Counter(int(t) for t in self.arrivals).values(), default=0)

    def objects(self, numbers: list[str], now: datetime) -> dict[str, Any]:
        found = [self._object(n.strip().upper(), now) for n in numbers]
        return {
            "versao": "1.0.0",
            "quantidade": len(found),
            "objetos": found,
            "tipoResultado": "Todos os eventos",
        }

    def _object(self, number: str, now: datetime) -> dict[str, Any]:
        if number.startswith("XX") or (self.known_prefixes and not number.startswith(self.known_prefixes)):
            return {
                "codObjeto": number,
                "mensagem": "SRO-020: Objeto não encontrado na base de dados dos Correios.",
            }
        seed = int.from_bytes(hashlib.sha256(number.encode()).digest()[:4], "big")
        origin, destination = _CITIES[seed % len(_CITIES)], _CITIES[(seed // 7 + 1) % len(_CITIES)]
        steps = [
            ("PO", "01", "Objeto postado", origin, None),
            ("RO", "01", "Objeto em trânsito - por favor aguarde", origin, _HUB),
            ("RO", "01", "Objeto em trânsito - por favor aguarde", _HUB, destination),
            ("OEC", "01", "Objeto saiu para entrega ao destinatário", destination, None),
            ("BDE", "01", "Objeto entregue ao destinatário", destination, None),
        ]
        elapsed = (now - self.started_at).total_seconds()
        events = [
            _event(code, kind, text, place, to, self.started_at + timedelta(seconds=i * self.step_s))
            for i, (code, kind, text, place, to) in enumerate(steps)
            if elapsed >= i * self.step_s
        ]
        return {
            "codObjeto": number,
            "tipoPostal": {"sigla": number[:2], "descricao": "ETIQUETA LOGICA SEDEX", "categoria": "SEDEX"},
            "dtPrevista": (self.started_at + timedelta(days=3))
            .astimezone(_BRASILIA)
            .strftime("%Y-%m-%dT23:59:59"),
            "modalidade": "F",
            "eventos": list(reversed(events)),  # the SRO API lists the newest event first
        }

    def _admit(self) -> JSONResponse | None:
        """The throttle and the failure switch, applied to every API call."""
        now = time.time()
        self.arrivals.append(now)
        while self._window and int(self._window[0]) != int(now):  # per calendar second, as counted
            self._window.popleft()
        if len(self._window) >= self.rate_per_s:
            self.throttled += 1
            return JSONResponse(
                {"msgs": ["Limite de requisições excedido"]}, status_code=429, headers={"Retry-After": "1"}
            )
        self._window.append(now)
        if self.failing_status is not None:
            self.failed += 1
            return JSONResponse({"msgs": ["Serviço indisponível"]}, status_code=self.failing_status)
        return None

    def _build(self) -> FastAPI:
        app = FastAPI(title="Fake Correios", docs_url=None, redoc_url=None, openapi_url=None)

        @app.post("/token/v1/autentica")
        @app.post("/token/v1/autentica/cartaopostagem")
        async def token() -> Any:
            refused = self._admit()
            if refused is not None:
                return refused
            expires = (datetime.now(UTC) + timedelta(hours=1)).astimezone(_BRASILIA)
            return {
                "ambiente": "HOMOLOGACAO",
                "token": secrets.token_urlsafe(24),
                "expiraEm": expires.strftime("%Y-%m-%dT%H:%M:%S"),
            }

        @app.get("/srorastro/v1/objetos")
        async def objetos(request: Request, codigos: list[str] = Query(alias="codigosObjetos")) -> Any:
            refused = self._admit()
            if refused is not None:
                return refused
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"msgs": ["Token inválido"]}, status_code=401)
            return self.objects(codigos, datetime.now(UTC))

        self._add_admin_routes(app)
        return app

    def _add_admin_routes(self, app: FastAPI) -> None:
        @app.post("/__admin/failure")
        async def fail(body: dict[str, int]) -> Any:
            self.failing_status = int(body.get("status", 503))
            return {"failing_status": self.failing_status}

        @app.delete("/__admin/failure")
        async def recover() -> Any:
            self.failing_status = None
            return {"failing_status": None}

        @app.get("/__admin/stats")
        async def stats() -> Any:
            return {
                "requests": len(self.arrivals),
                "throttled": self.throttled,
                "failed": self.failed,
                "busiest_second": self.busiest_second(),
                "rate_per_s": self.rate_per_s,
            }


def _event(
    code: str, kind: str, text: str, place: tuple[str, str], to: tuple[str, str] | None, at: datetime
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "codigo": code,
        "tipo": kind,
        "dtHrCriado": at.astimezone(_AMAZON if place[1] == "AM" else _BRASILIA).strftime("%Y-%m-%dT%H:%M:%S"),
        "descricao": text,
        "unidade": {"tipo": "Unidade de Tratamento", "endereco": {"cidade": place[0], "uf": place[1]}},
    }
    if to is not None:
        event["unidadeDestino"] = {
            "tipo": "Unidade de Tratamento",
            "endereco": {"cidade": to[0], "uf": to[1]},
        }
    return event


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A fake Correios tracking API for development.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second before 429")
    parser.add_argument("--step", type=float, default=60.0, help="seconds between a shipment's events")
    parser.add_argument(
        "--known-prefix", action="append", default=[], help="only these numbers exist (repeatable)"
    )
    args = parser.parse_args()
    fake = FakeCorreios(rate_per_s=args.rate, step_s=args.step, known_prefixes=tuple(args.known_prefix))
    uvicorn.run(fake.app, host=args.host, port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
