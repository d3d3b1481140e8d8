"""The outside tester's probe of `ragtide serve`, re-run against the hardened service.

    python benchmarks/hostile.py            # a `ragtide serve` process on a fresh Milvus Lite file, with a key

Each probe of the hardening work, measured on a real service process over loopback:
the time to a 401 and the service's memory for a 60 MB keyless upload (sent in full
as fast as the service takes it); `/metrics` after 10,000 requests for unknown paths,
and one scrape's time; the filter that killed Milvus Lite (answered?, and the next
question); a 1,000-page PDF whose pages share one content stream (the job's outcome
and time); Milvus Lite SIGKILLed under the service (the time until it answers again).
Prints JSON, with the CPU flags.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from hostile_files import pdf_bomb  # noqa: E402
from ragtide.embedding.backends import cpu_flags  # noqa: E402
from server_fixture import free_port, wait_for_job  # noqa: E402

KEY = "probe-key-0123456789"
ESSAY = ROOT.parent / "shared" / "data" / "paul_graham_essay.txt"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def keyless_body(port: int, pid: int, mb: int = 60) -> dict:
    before = rss_mb(pid)
    body = b"a" * (1 << 20)
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {mb << 20}\r\n\r\n".encode()
        )
        reply = b""
        s.setblocking(False)
        while sent < mb << 20 and not reply:
            try:
                reply = s.recv(4096)
            except BlockingIOError:
                pass
            try:
                sent += s.send(body)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.001)
        s.setblocking(True)
        reply = reply or s.recv(4096)
    return {
        "status": reply.split(b" ", 2)[1].decode() if reply else "none",
        "ms_to_answer": round(1000 * (time.perf_counter() - started), 1),
        "mb_the_client_got_to_send": round(sent / 2**20, 1),
        "service_rss_mb_before": round(before, 1),
        "service_rss_mb_after": round(rss_mb(pid), 1),
    }


def milvus_lite_of(pid: int) -> int:
    """The milvus-lite process the service started (a child of one of its threads)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"milvus" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    raise SystemExit("no milvus-lite process under the service")


def unknown_paths(url: str, n: int = 10_000) -> dict:
    with httpx.Client(base_url=url) as anyone:
        before = len(anyone.get("/metrics").content)
        for i in range(n):
            anyone.get(f"/static/unknown-{i}.js")
        started = time.perf_counter()
        after = len(anyone.get("/metrics").content)
        scrape = time.perf_counter() - started
    return {
        "requests": n,
        "metrics_bytes_before": before,
        "metrics_bytes_after": after,
        "scrape_ms": round(1000 * scrape, 1),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ragtide-hostile-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", RAGTIDE_API_KEYS=KEY)
    log = open(work / "serve.log", "w")
    command = [sys.executable, "-m", "ragtide.cli", "serve", "--uri", str(work / "probe.db"), "--port", str(port)]
    service = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or service.poll() is not None:
                raise SystemExit(f"the service did not start; see {log.name}")
            time.sleep(0.3)
        out: dict = {
            "date": time.strftime("%Y-%m-%d"),
            "cpu_flags": sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni"}),
        }
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as client:
            job = client.post("/v1/documents", files=[("files", (ESSAY.name, ESSAY.read_bytes()))]).json()["job"]
            wait_for_job(client, job["id"])
            out["keyless_60_mb_upload"] = keyless_body(port, service.pid)
            out["unknown_paths"] = unknown_paths(url)
            crash = client.post("/v1/query", json={"question": "x", "filter": "chunk_index / 0 == 1"})
            after = client.post("/v1/query", json={"question": "What did the author work on?"})
            out["crash_filter"] = {
                "status": crash.status_code,
                "message": crash.json()["error"]["message"],
                "next_question_status": after.status_code,
            }
            bomb = pdf_bomb(pages=1000, lines=1000)  # 50 KB of text a page, as the probe's
            started = time.perf_counter()
            job = client.post("/v1/documents", files=[("files", ("bomb.pdf", bomb))]).json()["job"]
            job = wait_for_job(client, job["id"])
            out["pdf_bomb"] = {
                "file_kb": len(bomb) // 1024,
                "seconds": round(time.perf_counter() - started, 2),
                "status": job["status"],
                "reason": job["failures"].get("bomb.pdf", ""),
            }
            os.kill(milvus_lite_of(service.pid), signal.SIGKILL)
            started = time.perf_counter()
            again = client.post("/v1/query", json={"question": "What did the author work on?"})
            out["milvus_lite_killed"] = {
                "next_question_status": again.status_code,
                "seconds_to_answer": round(time.perf_counter() - started, 2),
            }
        print(json.dumps(out, indent=1))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)


if __name__ == "__main__":
    main()
