"""Correios (ECT): SRO code table (``codes.csv``)."""
