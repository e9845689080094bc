"""ANSI X12 214 AT701 shipment status codes: code table (``codes.csv``); sources in ``README.md``."""
