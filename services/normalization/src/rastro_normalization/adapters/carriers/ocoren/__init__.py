"""OCOREN (PROCEDA) standard occurrence codes: code table (``codes.csv``); sources in ``README.md``."""
