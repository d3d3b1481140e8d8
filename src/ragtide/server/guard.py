"""The service's front door: every request is checked here, from its headers, before any of
its body is read or any work is done.

In order: the Host header against the allowed names (without keys: a page on another site
must not reach a loopback service through DNS rebinding); cross-site state-changing
requests refused (without keys: a form on another origin must not upload documents); the
API key, for ``/v1`` (the key found is the request's ``state.key``: its tenant and role, see
:mod:`.keys`); each key's request rate (429 with ``Retry-After`` past it); the declared body
size; then a bounded number of ``/v1`` requests at once (503 with ``Retry-After`` beyond it). The body is then counted as it streams, and a
client that stops sending it is cut off. Every response carries security headers.

Plain ASGI, so nothing (no multipart parser, no JSON decoder) sees a request it refuses.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from .errors import error
from .keys import LOCAL, Key, KeyRing

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATH = "/v1/documents"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# The docs pages bootstrap Swagger UI and ReDoc with an inline script; ReDoc runs a worker.
_CSP_PAGE = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_CSP_DOCS = _CSP_PAGE.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'") + "; worker-src 'self' blob:"
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


@dataclass(frozen=True)
class Limits:
    """What the guard enforces (see :class:`~ragtide.server.ServerConfig`, which builds it)."""

    keys: KeyRing
    allowed_hosts: tuple[str, ...]  # empty: any Host
    max_json_bytes: int
    max_upload_bytes: int  # one whole upload request
    body_timeout_s: float  # the longest wait for the next piece of a body
    max_concurrent: int  # /v1 requests at once
    key_rate: float  # requests a second each key may make, on average
    key_burst: int  # and at once, after a pause


class Guard:
    """The checks of the module's docstring, around ``app``."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self._in_flight = 0
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(scope, send)
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if not scope["path"].startswith("/v1/"):
            await self.app(scope, _bounded(receive, self._body_limit(scope), self.limits.body_timeout_s), send)
            return
        if self._in_flight >= self.limits.max_concurrent:
            busy = error(
                503,
                f"busy: {self.limits.max_concurrent} requests under way; try again shortly",
                kind="busy",
                headers={"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return
        self._in_flight += 1
        try:
            await self.app(scope, _bounded(receive, self._body_limit(scope), self.limits.body_timeout_s), send)
        finally:
            self._in_flight -= 1

    def _refusal(self, scope: Scope) -> Any:
        headers = _headers(scope)
        limits = self.limits
        if limits.allowed_hosts and host_name(headers.get("host", "")) not in limits.allowed_hosts:
            return error(400, "this service does not answer to that Host name", kind="invalid_host")
        if not limits.keys and scope["method"] not in _SAFE_METHODS and _cross_site(headers):
            return error(
                403,
                "cross-site requests that change documents are refused; use the page or a client on this machine",
                kind="forbidden",
            )
        if scope["path"].startswith("/v1/"):
            key = self._key(headers) if limits.keys else LOCAL
            if key is None:
                return error(
                    401,
                    "missing, wrong or revoked API key: send 'Authorization: Bearer <key>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            wait = self._wait(key)
            if wait:
                return error(
                    429,
                    f"too many requests for this key ({limits.key_rate:g} a second); try again shortly",
                    kind="rate_limited",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
            scope.setdefault("state", {})["key"] = key
        declared = headers.get("content-length", "")
        limit = self._body_limit(scope)
        if declared.isdigit() and int(declared) > limit:
            return error(413, f"the request body is larger than {_size(limit)}")
        return None

    def _key(self, headers: dict[str, str]) -> Key | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        key = self.limits.keys.match(token.strip())
        return key if scheme.lower() == "bearer" else None

    def _wait(self, key: Key) -> float:
        """Seconds until ``key`` may make another request (0: now), by a token bucket."""
        if key is LOCAL:
            return 0.0
        rate, burst = self.limits.key_rate, self.limits.key_burst
        now = time.monotonic()
        tokens, then = self._buckets.get(key.id, (float(burst), now))
        tokens = min(float(burst), tokens + (now - then) * rate)
        if tokens < 1:
            self._buckets[key.id] = (tokens, now)
            return (1 - tokens) / rate
        self._buckets[key.id] = (tokens - 1, now)
        return 0.0

    def _body_limit(self, scope: Scope) -> int:
        if scope["path"] == UPLOAD_PATH and scope["method"] == "POST":
            return self.limits.max_upload_bytes
        return self.limits.max_json_bytes


def _bounded(receive: Receive, limit: int, timeout: float) -> Receive:
    """``receive``, with the body counted against ``limit`` and each piece awaited at most
    ``timeout`` seconds. Once the body is whole, later calls (a streaming response waiting
    for the client to leave) pass through untouched."""
    received = 0
    whole = False

    async def bounded() -> Message:
        nonlocal received, whole
        if whole:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise HTTPException(408, f"the request body stopped arriving (nothing for {timeout:g} s)") from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"the request body is larger than {_size(limit)}")
            whole = not message.get("more_body", False)
        else:
            whole = True
        return message

    return bounded


def _with_security_headers(scope: Scope, send: Send) -> Send:
    path = scope["path"]
    csp = _CSP_DOCS if path in ("/docs", "/redoc") else _CSP_PAGE

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(name, value) for name, value in _HEADERS if name not in present]
            if b"content-security-policy" not in present:
                extra.append((b"content-security-policy", csp.encode()))
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return secured


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def host_name(host: str) -> str:
    """The name in a Host header or address, without its port or brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cross_site(headers: dict[str, str]) -> bool:
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return host_name(origin.split("://", 1)[-1]) != host_name(headers.get("host", "")) or (
        _port(origin.split("://", 1)[-1]) != _port(headers.get("host", ""))
    )


def _port(host: str) -> str:
    host = host.strip()
    if host.startswith("["):
        return host[host.find("]") + 2 :] if "]:" in host else ""
    return host.rsplit(":", 1)[1] if host.count(":") == 1 else ""


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 2**10:g} KB"
