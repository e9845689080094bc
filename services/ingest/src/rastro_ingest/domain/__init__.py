"""Pure ingest logic: reading API events into typed payloads, with errors reported per event."""
