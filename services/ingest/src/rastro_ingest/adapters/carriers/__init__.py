"""Carrier adapters: one folder per carrier with a pure ``parse.py`` (payload -> raw events), its golden
fixtures, and where the carrier has an API a ``client.py`` — the only module that does HTTP."""
