"""`ragtide serve` against hostile requests, as an outside tester probed it: each finding of
that probe is a test here, on loopback, bounded in count and time.

A hostile filter, a keyless body, a header trickle, a flood of unknown paths, a crashed
Milvus Lite, a PDF that expands a thousandfold, racing uploads of one name: the service
refuses or survives each, says why in one line, and keeps answering.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from conftest import ESSAY, drop, new_collection  # noqa: E402
from hostile_files import pdf_bomb  # noqa: E402
from ragtide import RAG  # noqa: E402
from ragtide.server import ServerConfig, check_bind  # noqa: E402
from ragtide.settings import Settings  # noqa: E402
from server_fixture import running, upload, wait_for_job  # noqa: E402

KEY = "hardening-key-0123456789"
DOC_CHARS = 300_000  # the documents' limit on text in these services: the PDF bomb passes it early


def _service(tmp_path_factory, lite_dir, embedder, name: str, **options):
    uri, collection = str(lite_dir / f"{name}.db"), new_collection()
    config = ServerConfig(
        upload_dir=tmp_path_factory.mktemp(f"{name}-uploads"),
        max_upload_mb=1.0,
        max_request_mb=2.0,
        max_json_kb=64,
        header_timeout_s=2.0,
        body_timeout_s=2.0,
        settings=Settings.load(uri=uri, collection=collection, max_doc_chars=DOC_CHARS),
        **options,
    )
    return uri, collection, config, RAG(settings=config.settings, embedder=embedder)


@pytest.fixture(scope="module")
def guarded(lite_dir, embedder, tmp_path_factory):
    """A service with a key and small limits, holding the essay: (url, client, config)."""
    uri, collection, config, rag = _service(tmp_path_factory, lite_dir, embedder, "guarded", api_keys=(KEY,))
    with running(config, rag) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
            job = wait_for_job(client, upload(client, ESSAY).json()["job"]["id"])
            assert job["status"] == "done", job
            yield url, client, config
    rag.close()
    drop(uri, collection)


@pytest.fixture(scope="module")
def keyless(lite_dir, embedder, tmp_path_factory):
    uri, collection, config, rag = _service(tmp_path_factory, lite_dir, embedder, "keyless")
    with running(config, rag) as url:
        yield url
    rag.close()
    drop(uri, collection)


def _ask(client: httpx.Client, **body) -> httpx.Response:
    return client.post("/v1/query", json={"question": "What did the author work on?", **body})


# -- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "chunk_index / 0 == 1",  # killed Milvus Lite (SIGFPE)
        "chunk_index % 0 == 1",
        'text like "' + "%a" * 400 + '"',  # kept Milvus busy for minutes
        'source like "' + "%a" * 50 + '"',
        " or ".join(f"page == {i}" for i in range(300)),  # answered 503
        'array_contains(metadata["x"], 1)',
    ],
)
def test_a_hostile_filter_is_a_400_and_the_service_keeps_answering(guarded, hostile):
    _, client, _ = guarded
    refused = _ask(client, filter=hostile)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"].startswith("filter: ")
    assert _ask(client, filter="page == -1 or chunk_index >= 0").status_code == 200
    assert client.get("/readyz").status_code == 200


# -- the front door: keys, sizes, timeouts, hosts, origins ---------------------------------


def _raw(url: str, head: str, body: bytes = b"", *, read: bool = True, timeout: float = 10) -> bytes:
    """Send ``head`` (and ``body``) on a bare socket; what comes back before the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head.encode() + body)
        if not read:
            return b""
        reply = b""
        try:
            while chunk := s.recv(65536):
                reply += chunk
                if b"\r\n\r\n" in reply and b"Connection: close" not in head.encode():
                    break
        except TimeoutError:
            pass
        return reply


def test_a_keyless_body_is_refused_from_its_headers_before_it_is_sent(guarded):
    url, _, _ = guarded
    # A 60 MB upload announced, none of it sent: the 401 comes at once, so nothing was read.
    head = (
        "POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {60 * 2**20}\r\nConnection: close\r\n\r\n"
    )
    reply = _raw(url, head)
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


@pytest.mark.parametrize("path", ["/v1/query", "/v1/chat/completions", "/v1/documents"])
def test_bodies_past_their_limit_are_413_before_they_are_read(guarded, path):
    url, _, config = guarded
    limit = config.max_request_mb * 2**20 if path == "/v1/documents" else config.max_json_kb * 1024
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {int(limit) + 1}\r\nConnection: close\r\n\r\n"
    )
    reply = _raw(url, head)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_a_chunked_body_is_counted_as_it_streams(guarded):
    _, client, config = guarded

    def pieces():
        yield b'{"question": "'
        for _ in range(config.max_json_kb + 8):
            yield b"a" * 1024
        yield b'"}'

    reply = client.post("/v1/query", content=pieces(), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413, reply.text


def test_a_header_trickle_is_cut_off(guarded):
    url, _, config = guarded
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as s:
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                s.sendall(bytes([byte]))
                time.sleep(0.25)
            except OSError:
                closed = True
                break
            if time.monotonic() - started > config.header_timeout_s + 3:
                break
        if not closed:
            s.settimeout(5)
            try:
                closed = s.recv(1024) == b""
            except OSError:
                closed = True
    assert closed, "the connection stayed open past the header deadline"


def test_a_stalled_body_is_cut_off(guarded):
    url, _, config = guarded
    head = (
        f"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
    )
    reply = _raw(url, head, b'{"question": "wh', timeout=config.body_timeout_s + 10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_past_the_concurrency_cap_requests_get_503_and_retry_after(lite_dir, embedder, tmp_path_factory):
    uri, collection, config, rag = _service(tmp_path_factory, lite_dir, embedder, "capped", max_concurrent=1)
    with running(config, rag) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as holder:
            # One request in flight, its body unfinished: it holds the only slot.
            holder.sendall(
                b"POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"question": '
            )
            time.sleep(0.3)
            busy = httpx.get(f"{url}/v1/documents", timeout=30)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
            assert httpx.get(f"{url}/healthz").status_code == 200  # health is never queued
        assert httpx.get(f"{url}/v1/documents", timeout=30).status_code == 200
    rag.close()
    drop(uri, collection)


def test_without_keys_other_host_names_and_cross_site_writes_are_refused(keyless):
    url = keyless
    assert httpx.get(f"{url}/v1/documents").status_code == 200
    rebound = httpx.get(f"{url}/v1/documents", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400 and "Host" in rebound.json()["error"]["message"]
    form = {"files": ("planted.txt", b"Planted by another site.")}
    for headers in ({"Origin": "http://attacker.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        refused = httpx.post(f"{url}/v1/documents", files=form, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
    same = httpx.post(f"{url}/v1/documents", files=form, headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 202, same.text


def test_only_proven_loopback_addresses_count_as_loopback():
    for host in ("", "0.0.0.0", "::", "192.0.2.1"):
        with pytest.raises(Exception, match="RAGTIDE_API_KEYS"):
            check_bind(host, ServerConfig())
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(host, ServerConfig())


def test_every_response_carries_security_headers_and_the_docs_work_offline(guarded):
    url, client, _ = guarded
    for reply in (
        httpx.get(f"{url}/"),
        client.get("/v1/documents"),
        httpx.get(f"{url}/nowhere"),
        httpx.get(f"{url}/docs"),
    ):
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'self'" in reply.headers["content-security-policy"]
    docs = httpx.get(f"{url}/docs").text
    assert "cdn." not in docs and "/static-docs/swagger-ui-bundle.js" in docs
    assert httpx.get(f"{url}/static-docs/swagger-ui-bundle.js").status_code == 200
    assert "cdn." not in httpx.get(f"{url}/redoc").text
    assert "sessionStorage" in httpx.get(f"{url}/static/app.js").text


def test_unknown_paths_cannot_grow_the_metrics(guarded):
    url, _, _ = guarded
    with httpx.Client(base_url=url) as anyone:
        before = len(anyone.get("/metrics").text)
        for i in range(300):
            anyone.get(f"/static/nothing-{i}.js")
            anyone.get(f"/stray/{i}")
        after = anyone.get("/metrics").text
    assert len(after) - before < 4000, "each unknown path became a series"
    assert 'route="/static/{path}"' in after and "nothing-1" not in after and "stray" not in after


# -- uploads and jobs ---------------------------------------------------------------------


def test_racing_uploads_of_one_name_are_versions_in_order(guarded):
    url, client, config = guarded
    replies: list[httpx.Response] = []

    def send(i: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
            replies.append(
                c.post("/v1/documents", files=[("files", ("race.txt", f"Version {i} of the race.".encode()))])
            )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in replies] == [202] * 8, [r.text for r in replies if r.status_code != 202]
    jobs = [wait_for_job(client, r.json()["job"]["id"]) for r in replies]
    assert all(j["status"] == "done" for j in jobs), jobs
    assert sum(1 for j in jobs if j["replaced"] == ["race.txt"]) >= 7
    docs = [d for d in client.get("/v1/documents").json()["documents"] if d["source"] == "race.txt"]
    assert len(docs) == 1
    # The last job to run placed the version kept, and it is the one stored.
    stored = (config.upload_dir / "files" / "race.txt").read_text()
    assert any(stored == f"Version {i} of the race." for i in range(8))
    hits = _ask(client, filter='source like "%race.txt"').json()["sources"]
    assert [h["text"] for h in hits] == [stored]
    assert not list((config.upload_dir / "incoming").iterdir()), "a job's incoming files were left behind"


def test_a_refused_upload_touches_no_stored_file(guarded):
    _, client, config = guarded
    keep = config.upload_dir / "files" / "keep.txt"
    job = wait_for_job(
        client,
        client.post("/v1/documents", files=[("files", ("keep.txt", b"Kept: the first version."))]).json()["job"]["id"],
    )
    assert job["status"] == "done"
    refused = client.post(
        "/v1/documents",
        files=[("files", ("keep.txt", b"Overwritten?")), ("files", ("big.txt", b"a" * (2**20 + 1)))],
    )
    assert refused.status_code == 413
    assert keep.read_text() == "Kept: the first version."
    assert not list((config.upload_dir / "incoming").iterdir())


def test_a_long_non_ascii_name_is_stored_and_a_failed_file_does_not_stay(guarded):
    _, client, config = guarded
    name = "Überlegungen-" + "ü" * 190 + ".txt"
    reply = client.post("/v1/documents", files=[("files", (name, b"Long names hold notes on moss."))])
    assert reply.status_code == 202, reply.text
    assert wait_for_job(client, reply.json()["job"]["id"])["status"] == "done"
    broken = client.post("/v1/documents", files=[("files", ("broken.pdf", b"%PDF-1.4 broken"))])
    job = wait_for_job(client, broken.json()["job"]["id"])
    assert job["status"] == "failed" and "broken.pdf" in job["failures"]
    assert not (config.upload_dir / "files" / "broken.pdf").exists()


def test_a_pdf_that_expands_is_stopped_at_its_limit(guarded, figure):
    _, client, _ = guarded
    bomb = pdf_bomb(pages=1000)
    assert len(bomb) < 200_000  # a small file, 10 MB of text
    started = time.monotonic()
    reply = client.post("/v1/documents", files=[("files", ("bomb.pdf", bomb))])
    job = wait_for_job(client, reply.json()["job"]["id"])
    took = time.monotonic() - started
    assert job["status"] == "failed" and f"more than {DOC_CHARS:,} characters" in job["failures"]["bomb.pdf"], job
    assert job["chunks"] == 0
    figure(f"a {len(bomb) // 1024} KB PDF of 1,000 pages stopped at {DOC_CHARS:,} characters in {took:.2f} s")


def test_a_job_can_be_cancelled(guarded):
    _, client, config = guarded
    # Two jobs of one name: the second waits for the first, and is cancelled while it waits.
    first = client.post("/v1/documents", files=[("files", ("slow.txt", ESSAY.read_bytes()))]).json()["job"]["id"]
    second = client.post("/v1/documents", files=[("files", ("slow.txt", b"A second version."))]).json()["job"]["id"]
    cancelled = client.delete(f"/v1/jobs/{second}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    assert wait_for_job(client, first)["status"] == "done"
    assert (config.upload_dir / "files" / "slow.txt").read_bytes() == ESSAY.read_bytes()
    assert client.delete(f"/v1/jobs/{second}").json()["status"] == "cancelled"  # stays as it was
    assert client.delete("/v1/jobs/" + "0" * 32).status_code == 404


def test_answers_and_errors_name_no_server_path(guarded):
    _, client, config = guarded
    answer = _ask(client).json()
    listed = client.get("/v1/documents").json()["documents"]
    errors = [
        client.post("/v1/query", json={"question": "x", "mode": "lexical", "filter": "page >"}).text,
        client.get("/v1/jobs/" + "a" * 32).text,
    ]
    for text in [str(answer), str(listed), *errors]:
        assert str(config.upload_dir) not in text and str(Path(config.settings.uri).parent) not in text
    assert "paul_graham_essay.txt" in [s["source"] for s in answer["sources"]]


# -- Milvus Lite under the service ----------------------------------------------------------


def _lite_process(uri: str) -> int:
    from milvus_lite.server_manager import server_manager_instance

    return server_manager_instance._servers[str(Path(uri).resolve())]._p.pid


def test_a_killed_milvus_lite_is_restarted_and_answers_resume(guarded, figure):
    _, client, config = guarded
    assert _ask(client).status_code == 200
    old = _lite_process(config.settings.uri)
    os.kill(old, signal.SIGKILL)
    started = time.monotonic()
    replies = [_ask(client) for _ in range(3)]
    resumed = time.monotonic() - started
    assert [r.status_code for r in replies] == [200] * 3, [r.text for r in replies]
    assert client.get("/readyz").status_code == 200
    assert _lite_process(config.settings.uri) != old
    figure(f"Milvus Lite SIGKILLed under the service: answering again {resumed:.2f} s later")


def test_uploads_carry_metadata_and_any_readable_type_and_the_list_describes_them(guarded):
    _, client, _ = guarded
    reply = client.post(
        "/v1/documents",
        files=[
            ("files", ("NOTES", b"Team notes: the kiln is serviced on Mondays.")),
            ("files", ("t.csv", b"a,b\n1,2\n")),
        ],
        data={"meta": ["team=ceramics", "year=2024"]},
    )
    assert reply.status_code == 202, reply.text
    job = wait_for_job(client, reply.json()["job"]["id"])
    assert job["status"] == "done" and job["metadata"] == {"team": "ceramics", "year": 2024}, job
    listed = {d["source"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert listed["NOTES"]["format"] == "text" and listed["t.csv"]["format"] == "table"
    assert listed["NOTES"]["metadata"]["team"] == "ceramics" and listed["NOTES"]["bytes"] > 0
    answer = _ask(client, filter='metadata["team"] == "ceramics"').json()
    assert {s["source"] for s in answer["sources"]} <= {"NOTES", "t.csv"} and answer["sources"][0]["metadata"][
        "year"
    ] == 2024
    binary = client.post("/v1/documents", files=[("files", ("blob", bytes(range(256)) * 4))])
    assert binary.status_code == 415 and "not text" in binary.json()["error"]["message"]
    bad_meta = client.post("/v1/documents", files=[("files", ("x.txt", b"x"))], data={"meta": ["type=evil"]})
    assert bad_meta.status_code == 400 and "metadata" in bad_meta.json()["error"]["message"]
