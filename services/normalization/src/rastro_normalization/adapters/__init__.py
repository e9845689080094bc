"""Adapters: carrier code tables and clients, Postgres repositories, HTTP senders."""
