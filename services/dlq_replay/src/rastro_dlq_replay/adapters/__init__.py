"""Postgres access of the dead-letter store."""
