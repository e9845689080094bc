"""Jadlog: code table (``codes.csv``); sources in ``README.md``."""
