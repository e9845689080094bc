"""A generic JSON push format for carriers (and aggregators) without an adapter of their own."""
