"""Every error the service answers is JSON: ``{"error": {"type", "message"}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

STATUS_TYPES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 413: "too_large", 415: "unsupported_type", 422: "invalid_request", 503: "unavailable", 504: "timeout"}


def error(status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind or STATUS_TYPES.get(status, "error"), "message": message}},
                        status_code=status, headers=headers)
