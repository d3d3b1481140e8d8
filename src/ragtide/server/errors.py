"""Every error the service answers is JSON: ``{"error": {"type", "message"}}``."""

from __future__ import annotations

import re
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

STATUS_TYPES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    502: "llm_failed",
    503: "unavailable",
    504: "timeout",
}


def error(status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind or STATUS_TYPES.get(status, "error"), "message": message}},
        status_code=status,
        headers=headers,
    )


# An absolute path of two or more parts, not part of a URL ("http://host/x" keeps its path).
_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s/'\"()\[\],;]+/)+([^\s/'\"()\[\],;]+)")


def redact(message: str) -> str:
    """``message`` without this machine's paths: a file is named by its own name only
    ("/srv/ragtide/uploads/files/a.pdf" -> "a.pdf"), Milvus's source paths likewise."""
    return _PATH.sub(r"\1", message)


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, so clients (and the fuzzer) know them."""
    return {status: {"model": ErrorBody, "description": STATUS_TYPES.get(status, "error")} for status in statuses}
