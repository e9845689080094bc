"""Loopback ports: find a free one, tell whether one is taken and by whom."""

from __future__ import annotations

import socket

import psutil

__all__ = ["free_port", "port_is_free", "who_listens"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port in TIME_WAIT from the previous run is free for our listeners too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def who_listens(port: int) -> str:
    """``pid 123 (python -m rastro_ingest)``, or a hint when the owner cannot be seen."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                cmdline = " ".join(psutil.Process(conn.pid).cmdline()[:4])
                return f"pid {conn.pid} ({cmdline})"
    except (psutil.Error, OSError):
        pass
    return f"see `lsof -i :{port}`"
