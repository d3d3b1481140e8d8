"""A real `ragtide serve` app on uvicorn, in a thread, on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

# Chromium's flags for a closed network and a root user: without the background-networking
# ones, its many connections to Google's hosts are refused, and as root it needs --no-sandbox.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(config, rag=None):
    """Serve ``create_app(config, rag=rag)`` until the block ends; yields the base URL."""
    import uvicorn

    from ragtide.server import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(config, "127.0.0.1", port, rag=rag))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("the service did not become ready")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def upload(client: httpx.Client, *paths: Path, names: list[str] | None = None) -> httpx.Response:
    names = names or [p.name for p in paths]
    return client.post("/v1/documents", files=[("files", (n, p.read_bytes())) for n, p in zip(names, paths)])
