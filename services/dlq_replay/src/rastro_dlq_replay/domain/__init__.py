"""Pure logic of the dead-letter store: no I/O, only the standard library and the event contract."""
