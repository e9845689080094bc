"""Delivery KPIs of the shipment read model (docs/kpis.md): OTIF, on time vs promise, transit time,
first-attempt and redelivery rates, exception and return rates, cost per delivery.

``windows`` and ``definitions`` are pure (no I/O; unit-tested); ``repository`` holds the SQL that
counts the same definitions in Postgres, ``facts`` stores the order facts they need (sales channel,
shipping cost), and ``api`` serves ``GET /v1/kpis``.
"""
