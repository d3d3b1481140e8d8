"""The HTTP service: one ragtide engine per process, shared by every request.

Concurrent requests share the engine's batching, so questions arriving together are
embedded in one model call and searched in one Milvus request. Errors are JSON
(``{"error": {"type", "message"}}``) with a 4xx status for every bad input; API keys,
upload limits and the question-length limit are enforced here, before the engine.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException

from ..engine import RAG
from ..errors import ConfigError, EmbeddingError, LLMError, LoaderError, RagtideError, StoreError
from ..settings import Settings
from . import openai_compat, routes
from .errors import STATUS_TYPES, error
from .jobs import Jobs

_ERROR_STATUS = ((ConfigError, 400), (LoaderError, 400), (StoreError, 503), (LLMError, 502), (EmbeddingError, 500))


@dataclass(frozen=True)
class ServerConfig:
    """What the service enforces on top of the engine's :class:`Settings`."""

    api_keys: tuple[str, ...] = ()  # bearer tokens; none: no authentication (loopback only, unless insecure)
    upload_dir: Path = Path("ragtide-uploads")  # uploaded files and the job records live here
    max_upload_mb: float = 100.0  # per file
    max_files: int = 100  # per upload
    max_question_chars: int = 4000
    request_timeout_s: float = 120.0
    settings: Settings = field(default_factory=Settings.load)


class Metrics:
    """Prometheus metrics of one app (its own registry: no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragtide_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ragtide_http_request_seconds",
            "HTTP request latency (to the response's start)",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.errors = Counter("ragtide_errors", "Errors answered, by type", ["type"], registry=self.registry)
        self.ingest_chunks = Counter(
            "ragtide_ingest_chunks", "Chunks embedded and stored by upload jobs", registry=self.registry
        )
        self.ingest_files = Counter(
            "ragtide_ingest_files", "Uploaded files ingested, by outcome", ["outcome"], registry=self.registry
        )
        self.questions = Counter(
            "ragtide_questions", "Questions answered, by retrieval mode", ["mode"], registry=self.registry
        )


def create_app(config: ServerConfig | None = None, *, rag: RAG | None = None) -> FastAPI:
    """The ASGI app. ``rag``: an engine to share (the caller closes it); else one is built from ``config.settings``."""
    config = config or ServerConfig()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = rag or RAG(settings=config.settings)
        config.upload_dir.mkdir(parents=True, exist_ok=True)
        app.state.rag = engine
        app.state.ready = False
        app.state.jobs = Jobs(config.upload_dir, lambda paths, progress: engine.aingest(paths, on_progress=progress))
        try:
            await engine.embedder()  # load the model now, not on the first question
            app.state.ready = True
            yield
        finally:
            await app.state.jobs.close()
            if rag is None:
                await engine.aclose()

    app = FastAPI(
        title="ragtide",
        version="1",
        lifespan=lifespan,
        description="Ask questions of your documents; answers cite their sources.",
    )
    app.state.config = config
    app.state.metrics = metrics

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        metrics.errors.labels(STATUS_TYPES.get(exc.status_code, "error")).inc()
        return error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        metrics.errors.labels("invalid_request").inc()
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors())
        return error(422, problems or "invalid request")

    @app.exception_handler(RagtideError)
    async def engine_error(request: Request, exc: RagtideError):
        status = next((code for kind, code in _ERROR_STATUS if isinstance(exc, kind)), 500)
        metrics.errors.labels(type(exc).__name__).inc()
        return error(status, str(exc), kind=type(exc).__name__)

    @app.exception_handler(asyncio.TimeoutError)
    async def timeout(request: Request, exc: asyncio.TimeoutError):
        metrics.errors.labels("timeout").inc()
        return error(504, f"the request took longer than {config.request_timeout_s:g} s")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        metrics.errors.labels("internal").inc()
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details", kind="internal")

    app.include_router(routes.health)
    app.include_router(routes.api, prefix="/v1", dependencies=[Depends(authorize)])
    app.include_router(openai_compat.router, prefix="/v1", dependencies=[Depends(authorize)])
    app.mount("/static", StaticFiles(directory=routes.STATIC), name="static")
    app.add_middleware(Measure, metrics=metrics)
    return app


class Measure:
    """Counts requests by route, method and status, and times them to the response's start.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's decorator runs every
    request through an extra task and a memory stream.
    """

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        counted = False

        def count(status: int) -> None:
            nonlocal counted
            counted = True
            route = _route_label(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

        async def measured(message) -> None:
            if message["type"] == "http.response.start":
                count(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, measured)
        except Exception:
            if not counted:
                count(500)  # answered by the outermost error handler
            raise


def _route_label(scope) -> str:
    """The route's template with its router's prefix ("/v1/jobs/{job_id}"): FastAPI's matched
    route knows only its own part ("/jobs/{job_id}"). Paths served without a route (the
    docs, static files) by their path; nothing matched: "unmatched", so that stray URLs
    cannot multiply the metrics' series."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if template is None:
        return scope["path"] if scope.get("endpoint") is not None else "unmatched"
    try:
        tail = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    path = scope["path"]
    return path[: len(path) - len(tail)] + template if path.endswith(tail) else template


async def authorize(request: Request) -> None:
    """Bearer API keys, compared in constant time; no keys configured: open (loopback only)."""
    keys: tuple[str, ...] = request.app.state.config.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip().encode()
    # Compare with every key, so the time taken does not say which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    if scheme.lower() != "bearer" or not matched:
        raise HTTPException(
            401, "missing or wrong API key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
        )
