"""`ragtide serve`: the HTTP service (FastAPI on uvicorn) and its web page.

Needs the ``server`` extra: ``pip install 'ragtide[server]'``.
"""

from __future__ import annotations

import ipaddress
import socket

from ..errors import ConfigError
from ..store import is_lite
from ..store.lite import check_not_busy
from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app", "serve", "check_bind"]


def check_bind(host: str, config: ServerConfig, insecure: bool = False) -> None:
    """Refuse to listen beyond this machine without API keys, unless told ``insecure``."""
    if config.api_keys or insecure or _loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without API keys: anyone who can reach it could read and delete your documents. "
        "Set RAGTIDE_API_KEYS (comma-separated keys), or pass --insecure if a proxy in front handles it"
    )


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 8000, *, insecure: bool = False) -> None:
    """Run the service until interrupted."""
    import uvicorn

    check_bind(host, config, insecure)
    if is_lite(config.settings.uri):
        check_not_busy(config.settings.uri)  # one line now, not a traceback from the app's start-up
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
