"""`ragtide serve`: the HTTP service (FastAPI on uvicorn) and its web page.

Needs the ``server`` extra: ``pip install 'ragtide[server]'``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..store import is_lite
from ..store.lite import check_not_busy
from .app import LOOPBACK_NAMES, ServerConfig, create_app
from .http import protocol_with_header_timeout

if TYPE_CHECKING:
    import uvicorn

    from ..engine import RAG

__all__ = ["ServerConfig", "create_app", "serve", "check_bind", "uvicorn_config"]


def check_bind(host: str, config: ServerConfig, insecure: bool = False) -> None:
    """Refuse to listen beyond this machine without API keys, unless told ``insecure``."""
    if config.has_keys or insecure or _loopback(host):
        return
    shown = repr(host) if host else "every address ('')"
    raise ConfigError(
        f"refusing to listen on {shown} without API keys: anyone who can reach it could read and delete your "
        "documents. Set RAGTIDE_API_KEYS (comma-separated keys), or pass --insecure if a proxy in front handles it"
    )


def _loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback one ("" is every address: no)."""
    if not host.strip():
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
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
    uvicorn.Server(uvicorn_config(config, host, port, log_level="info")).run()


def uvicorn_config(
    config: ServerConfig, host: str, port: int, *, rag: RAG | None = None, log_level: str = "warning"
) -> uvicorn.Config:
    """How uvicorn runs the app: headers within ``config.header_timeout_s``, and without keys
    only this machine's own Host names answered (a page elsewhere cannot rebind a name to it)."""
    import uvicorn

    if not config.has_keys and not config.allowed_hosts:
        names = {*LOOPBACK_NAMES, host.strip("[]").lower()} - {"", "0.0.0.0", "::"}
        config = dataclasses.replace(config, allowed_hosts=tuple(sorted(names)))
    return uvicorn.Config(
        create_app(config, rag=rag),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=30,
        http=protocol_with_header_timeout(config.header_timeout_s),
    )
