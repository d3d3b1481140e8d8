"""The service's Prometheus metrics: a registry of its own per app (no global state), and
the ASGI layer that counts and times every request by its route's template, so that no
client can multiply the series: paths no route matched share one label."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from .guard import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ..query import Answer


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
        self.support = Histogram(
            "ragtide_answer_support",
            "Share of an answer's sentences that the passages it cites support",
            registry=self.registry,
            buckets=(0.25, 0.5, 0.75, 0.9, 0.99, 1.0),
        )
        self.abstained = Counter(
            "ragtide_answers_abstained", "Answers that said the documents do not hold one", registry=self.registry
        )

    def answered(self, answer: Answer) -> None:
        """Count a finished answer's support, or that it abstained."""
        if answer.abstained:
            self.abstained.inc()
        elif answer.support is not None:
            self.support.observe(answer.support)


class Measure:
    """Counts requests by route, method and status, and times them to the response's start.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's decorator runs every
    request through an extra task and a memory stream.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                count(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, measured)
        except Exception:
            if not counted:
                count(500)  # answered by the outermost error handler
            raise


def _route_label(scope: Scope) -> str:
    """The route's template with its router's prefix ("/v1/jobs/{job_id}"): FastAPI's matched
    route knows only its own part ("/jobs/{job_id}"). A mounted folder of files by its mount
    ("/static/{path}"); nothing matched (or refused before routing): "unmatched"."""
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    if template is None:
        if scope.get("endpoint") is not None and scope.get("root_path", "") != "":
            return f"{scope['root_path'][len(scope.get('app_root_path', '')) :]}/{{path}}"
        return "unmatched"
    try:
        tail = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return str(template)
    path = scope["path"]
    return path[: len(path) - len(tail)] + template if path.endswith(tail) else str(template)
