"""The embedded dev stack behind ``make run`` (``rastro dev up``).

Tansu as the broker, an embedded PostgreSQL, the five services as child processes and a small gateway
that puts them under one base URL. Submodules are imported on use: nothing here starts or connects
anything at import time, and ``python -m rastro_cli.devstack.gateway`` stays warning-free.
"""
