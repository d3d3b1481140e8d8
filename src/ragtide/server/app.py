"""The HTTP service: one ragtide engine per process, shared by every request.

Concurrent requests share the engine's batching, so questions arriving together are
embedded in one model call and searched in one Milvus request. Errors are JSON
(``{"error": {"type", "message"}}``) with a 4xx status for every bad input. Keys, hosts
and body sizes are checked by :mod:`.guard` before a request reaches the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from ..engine import RAG
from ..errors import ConfigError, EmbeddingError, LLMError, LoaderError, RagtideError, StoreError
from ..settings import Settings, read_fields
from . import openai_compat, routes
from .audit import Audit
from .errors import STATUS_TYPES, error, redact
from .guard import Guard, Limits
from .jobs import Jobs
from .keys import KeyRing
from .metrics import Measure, Metrics
from .uploads import Uploads

_ERROR_STATUS = ((ConfigError, 400), (LoaderError, 400), (StoreError, 503), (LLMError, 502), (EmbeddingError, 500))


@dataclass(frozen=True)
class ServerConfig:
    """What the service enforces on top of the engine's :class:`Settings`."""

    api_keys: tuple[str, ...] = ()  # "key[:tenant[:role]]"; none and no file: no authentication (loopback only)
    api_keys_file: Path | None = None  # digests of keys with their tenants and roles (ragtide keys add)
    key_rate: float = 50.0  # requests a second per key, on average (429 and Retry-After past it)
    key_burst: int = 100  # requests at once per key, after a pause
    quota_chunks: int = 0  # chunks a tenant may store; uploads past it are refused (0: no quota)
    upload_dir: Path = Path("ragtide-uploads")  # uploaded files and the job records live here
    max_upload_mb: float = 100.0  # per file
    max_files: int = 100  # per upload
    max_request_mb: float = 256.0  # one whole upload request, all its files together
    max_json_kb: int = 1024  # any other request's body
    max_question_chars: int = 4000
    request_timeout_s: float = 120.0
    body_timeout_s: float = 30.0  # the longest wait for the next piece of a request's body
    header_timeout_s: float = 10.0  # the longest a client may take to send a request's headers
    max_concurrent: int = 64  # /v1 requests under way at once; more get 503 and Retry-After
    max_job_chunks: int = 200_000  # chunks one upload job may add
    allowed_hosts: tuple[str, ...] = ()  # Host names answered; empty: any with keys, loopback names without
    settings: Settings = field(default_factory=Settings.load)

    def __post_init__(self) -> None:
        for name in (
            "max_upload_mb",
            "max_request_mb",
            "max_json_kb",
            "max_files",
            "max_question_chars",
            "request_timeout_s",
            "body_timeout_s",
            "header_timeout_s",
            "max_concurrent",
            "max_job_chunks",
            "key_rate",
            "key_burst",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)}")
        if self.quota_chunks < 0:
            raise ConfigError(f"quota_chunks: must be 0 (no quota) or more, got {self.quota_chunks}")

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerConfig:
        """From ``overrides`` (None: not given), then ``RAGTIDE_SERVE_<FIELD>`` variables (the
        keys: ``RAGTIDE_API_KEYS``, comma-separated), then defaults."""
        values = read_fields(
            cls,
            "RAGTIDE_SERVE_",
            env,
            overrides,
            {"api_keys": ("RAGTIDE_API_KEYS",), "api_keys_file": ("RAGTIDE_API_KEYS_FILE",)},
        )
        return cls(**values)

    @property
    def has_keys(self) -> bool:
        """Whether the service asks for API keys."""
        return bool(self.api_keys) or self.api_keys_file is not None

    def limits(self) -> Limits:
        """What the front door enforces (:mod:`.guard`)."""
        hosts = self.allowed_hosts or (() if self.has_keys else LOOPBACK_NAMES)
        return Limits(
            keys=KeyRing(self.api_keys, self.api_keys_file),
            key_rate=self.key_rate,
            key_burst=self.key_burst,
            allowed_hosts=tuple(h.lower() for h in hosts),
            max_json_bytes=self.max_json_kb * 1024,
            max_upload_bytes=int(self.max_request_mb * 2**20),
            body_timeout_s=self.body_timeout_s,
            max_concurrent=self.max_concurrent,
        )


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def create_app(config: ServerConfig | None = None, *, rag: RAG | None = None) -> FastAPI:
    """The ASGI app. ``rag``: an engine to share (the caller closes it); else one is built from ``config.settings``."""
    config = config or ServerConfig()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = rag or RAG(settings=config.settings)
        app.state.rag = engine
        app.state.ready = False
        uploads = app.state.uploads = Uploads(config.upload_dir)
        app.state.audit = Audit(config.upload_dir / "audit.jsonl")
        app.state.jobs = Jobs(
            config.upload_dir,
            uploads,
            lambda paths, progress, metadata, tenant: engine.for_tenant(tenant or None).aingest(
                paths, on_progress=progress, max_chunks=config.max_job_chunks, metadata=metadata
            ),
        )
        try:
            await engine.embedder()  # load the model now, not on the first question
            app.state.ready = True
            yield
        finally:
            await app.state.jobs.close()
            if rag is None:
                await engine.aclose()

    # The docs' scripts come from the fastapi-offline package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="ragtide",
        static_url="/static-docs",
        version="1",
        lifespan=lifespan,
        description="Ask questions of your documents; answers cite their sources.",
    )
    app.state.config = config
    app.state.metrics = metrics

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        metrics.errors.labels(STATUS_TYPES.get(exc.status_code, "error")).inc()
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("invalid_request").inc()
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return error(422, problems or "invalid request")

    @app.exception_handler(RagtideError)
    async def engine_error(request: Request, exc: RagtideError) -> JSONResponse:
        status = next((code for kind, code in _ERROR_STATUS if isinstance(exc, kind)), 500)
        metrics.errors.labels(type(exc).__name__).inc()
        return error(status, redact(str(exc)), kind=type(exc).__name__)

    @app.exception_handler(asyncio.TimeoutError)
    async def timeout(request: Request, exc: asyncio.TimeoutError) -> JSONResponse:
        metrics.errors.labels("timeout").inc()
        return error(504, f"the request took longer than {config.request_timeout_s:g} s")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        metrics.errors.labels("internal").inc()
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details", kind="internal")

    app.include_router(routes.health)
    app.include_router(routes.api, prefix="/v1")
    app.include_router(openai_compat.router, prefix="/v1")
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    app.add_middleware(Guard, limits=config.limits())
    app.add_middleware(Measure, metrics=metrics)
    return app
