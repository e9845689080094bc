"""Pure webhook logic: signing, retry timing, outcome classification, endpoint policy, event filters.

Nothing in this package does I/O or imports anything outside the standard library; the adapters do the
HTTP and DNS and hand the results in as plain values.
"""
