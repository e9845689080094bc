"""CSV import: ``POST /v1/imports`` and its jobs."""
