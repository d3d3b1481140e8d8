"""`ragtide serve` over real HTTP: uploads, jobs, questions (JSON and streamed), the
OpenAI-compatible endpoint driven by the `openai` client, keys, limits and errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("fastapi")

from conftest import ESSAY, UBER, drop, new_collection  # noqa: E402
from ragtide import RAG, ConfigError  # noqa: E402
from ragtide.server import ServerConfig, check_bind  # noqa: E402
from ragtide.server.jobs import Job, Jobs  # noqa: E402
from ragtide.server.uploads import Uploads  # noqa: E402
from ragtide.settings import Settings  # noqa: E402
from server_fixture import running, upload, wait_for_job  # noqa: E402

KEY = "test-key-0123456789"


@pytest.fixture(scope="module")
def service(lite_dir, embedder, tmp_path_factory):
    uri, name = str(lite_dir / "serve.db"), new_collection()
    uploads = tmp_path_factory.mktemp("uploads")
    config = ServerConfig(
        api_keys=(KEY, "second-key"),
        upload_dir=uploads,
        max_upload_mb=1.0,
        max_files=3,
        settings=Settings.load(uri=uri, collection=name),
    )
    rag = RAG(settings=config.settings, embedder=embedder)
    with running(config, rag) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as client:
            reply = upload(client, ESSAY)
            assert reply.status_code == 202, reply.text
            job = wait_for_job(client, reply.json()["job"]["id"])
            assert job["status"] == "done" and job["added"] == 1 and job["chunks"] > 0, job
            yield url, client, uploads
    rag.close()
    drop(uri, name)


def test_health_readiness_metrics_and_docs_need_no_key(service):
    url, _, _ = service
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
    assert "openapi" in httpx.get(f"{url}/openapi.json").json()
    assert httpx.get(f"{url}/docs").status_code == 200
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "ragtide" in page.text
    metrics = httpx.get(f"{url}/metrics").text
    assert "ragtide_http_requests_total" in metrics and "ragtide_ingest_chunks" in metrics
    # Requests are counted by route template, method and status, and timed.
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith(("ragtide_http_requests_total{", "ragtide_http_request_seconds_count{"))
    ]
    for sample in (
        'ragtide_http_requests_total{method="GET",route="/healthz",status="200"}',
        'ragtide_http_requests_total{method="POST",route="/v1/documents",status="202"}',
        'ragtide_http_request_seconds_count{route="/v1/jobs/{job_id}"}',
    ):
        assert any(line.startswith(sample) for line in counted), (sample, counted)


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic dGVzdA==", f"Bearer {KEY}x"])
def test_api_refuses_a_missing_or_wrong_key(service, auth):
    url, _, _ = service
    reply = httpx.get(f"{url}/v1/documents", headers={"Authorization": auth} if auth else {})
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "unauthorized"
    assert reply.headers["www-authenticate"] == "Bearer"


def test_any_configured_key_works(service):
    url, _, _ = service
    assert httpx.get(f"{url}/v1/documents", headers={"Authorization": "Bearer second-key"}).status_code == 200


def test_query_answers_with_cited_sources(service):
    _, client, _ = service
    result = client.post("/v1/query", json={"question": "What computer did the author first write programs on?"}).json()
    assert "IBM 1401" in result["answer"] and result["mode"] == "extractive"
    assert result["retrieval"]["mode"] == "hybrid"
    fields = {"id", "text", "source", "page", "where", "section", "score", "metadata", "highlights"}
    assert set(result["sources"][0]) == fields
    assert any("paul_graham_essay" in s["source"] for s in result["sources"])
    # Where the answer is: the quoted sentence's offsets in its passage; and how well it is supported.
    assert not result["abstained"] and result["support"] == 1.0
    marked = [s["text"][a:b] for s in result["sources"] for a, b in s["highlights"]]
    assert any("IBM 1401" in m for m in marked)
    assert "ragtide_answer_support_bucket" in client.get("/metrics").text


@pytest.mark.model  # the threshold is the real model's
def test_a_question_the_documents_do_not_answer_is_not_found(service):
    _, client, _ = service
    off_topic = client.post("/v1/query", json={"question": "What is the capital of France?"}).json()
    assert off_topic["abstained"] and off_topic["answer"].startswith("Not found in your documents.")
    assert "France" in off_topic["answer"] and off_topic["sources"]  # what no passage mentions, and the closest
    assert "ragtide_answers_abstained_total 1.0" in client.get("/metrics").text


def test_query_streams_tokens_then_sources_then_done(service):
    _, client, _ = service
    events = []
    with client.stream(
        "POST", "/v1/query", json={"question": "Which computer did the author's father buy?", "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:])))
    kinds = [e for e, _ in events]
    assert kinds[0] == "token" and kinds[-2:] == ["sources", "done"]
    text = "".join(d["text"] for e, d in events if e == "token")
    assert "TRS-80" in text and events[-1][1]["answer"] == text
    assert events[-2][1] and events[-1][1]["retrieval"]["mode"] == "hybrid"


def test_concurrent_questions_over_http_each_get_their_answer(service):
    url, _, _ = service
    questions = {
        "What computer did the author first write programs on?": "IBM 1401",
        "Which computer did the author's father buy for him?": "TRS-80",
        "Which language was regarded as the language of AI?": "Lisp",
    }

    async def ask_all():
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
            replies = await asyncio.gather(*(c.post("/v1/query", json={"question": q}) for q in list(questions) * 8))
        return [r.json()["answer"] for r in replies]

    for answer, fact in zip(asyncio.run(ask_all()), list(questions.values()) * 8):
        assert fact in answer


def test_openai_client_gets_answers_in_both_forms(service):
    from openai import OpenAI

    url, _, _ = service
    client = OpenAI(base_url=f"{url}/v1", api_key=KEY)
    assert [m.id for m in client.models.list()] == ["ragtide"]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What computer did the author first write programs on?"},
    ]
    reply = client.chat.completions.create(model="ragtide", messages=messages)
    content = reply.choices[0].message.content
    assert "IBM 1401" in content and "Sources:" in content and "paul_graham_essay" in content
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="ragtide", messages=messages, stream=True)
    )
    assert streamed == content
    with pytest.raises(Exception) as refused:
        OpenAI(base_url=f"{url}/v1", api_key="wrong").chat.completions.create(model="ragtide", messages=messages)
    assert getattr(refused.value, "status_code", None) == 401


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"question": ""}, 422, "question"),
        ({"question": "x" * 4001}, 422, "question"),
        ({"question": "hi", "top_k": 0}, 422, "top_k"),
        ({"question": "hi", "top_k": 16385}, 422, "top_k"),
        ({"question": "hi", "mode": "fuzzy"}, 422, "mode"),
        ({"question": "hi", "filter": "bad((("}, 400, "filter"),
        ({"question": "   "}, 400, "question"),
        ({}, 422, "question"),
    ],
)
def test_bad_questions_are_4xx_json_errors(service, body, status, says):
    _, client, _ = service
    reply = client.post("/v1/query", json=body)
    assert reply.status_code == status, reply.text
    message = reply.json()["error"]["message"]
    assert says in message.lower() and "Traceback" not in message


def test_chat_without_a_user_message_is_refused(service):
    _, client, _ = service
    reply = client.post(
        "/v1/chat/completions", json={"model": "ragtide", "messages": [{"role": "system", "content": "hi"}]}
    )
    assert reply.status_code == 422 and "user message" in reply.json()["error"]["message"]


def test_upload_limits_types_and_names(service, tmp_path):
    _, client, uploads = service
    too_large = client.post("/v1/documents", files=[("files", ("big.txt", b"a" * (1024 * 1024 + 1)))])
    assert too_large.status_code == 413 and "big.txt" in too_large.json()["error"]["message"]
    wrong_type = client.post("/v1/documents", files=[("files", ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00" * 64))])
    assert wrong_type.status_code == 415 and "tool.exe" in wrong_type.json()["error"]["message"]
    too_many = client.post("/v1/documents", files=[("files", (f"{i}.txt", b"hi")) for i in range(4)])
    assert too_many.status_code == 413
    escape = client.post("/v1/documents", files=[("files", ("..\\..\\../escape.txt", b"Escaped text about walruses."))])
    assert escape.status_code == 202, escape.text
    job = wait_for_job(client, escape.json()["job"]["id"])
    assert job["status"] == "done" and job["files"] == ["escape.txt"]
    assert (uploads / "files" / "escape.txt").exists() and not (uploads.parent / "escape.txt").exists()


def test_a_bad_file_fails_alone_with_its_reason(service):
    _, client, _ = service
    reply = client.post(
        "/v1/documents",
        files=[
            ("files", ("broken.pdf", b"%PDF-1.4 not really")),
            ("files", ("fine.md", b"# Fine\n\nOtters hold hands while sleeping.")),
        ],
    )
    job = wait_for_job(client, reply.json()["job"]["id"])
    assert job["status"] == "failed" and job["added"] == 1 and list(job["failures"]) == ["broken.pdf"]
    assert "broken.pdf" not in [d["name"] for d in client.get("/v1/documents").json()["documents"]]


def test_documents_list_and_delete(service):
    _, client, uploads = service
    reply = client.post("/v1/documents", files=[("files", ("otters.txt", b"Sea otters use rocks as tools."))])
    wait_for_job(client, reply.json()["job"]["id"])
    docs = {d["name"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert {"paul_graham_essay.txt", "otters.txt"} <= set(docs)
    deleted = client.delete(f"/v1/documents/{docs['otters.txt']['id']}")
    assert deleted.status_code == 200 and deleted.json()["chunks"] == 1
    assert "otters.txt" not in [d["name"] for d in client.get("/v1/documents").json()["documents"]]
    assert not (uploads / "files" / "otters.txt").exists()
    assert client.delete(f"/v1/documents/{docs['otters.txt']['id']}").status_code == 404
    assert client.delete("/v1/documents/not-an-id").status_code == 404
    assert client.get("/v1/jobs/nope").status_code == 404
    current = client.get("/v1/collections").json()["current"]
    assert current["modes"] == ["dense", "lexical", "hybrid"] and current["documents"] >= 1


def test_a_job_cut_off_by_a_stop_is_reported_interrupted(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "abc.json").write_text(json.dumps(Job(id="abc", files=["a.txt"], status="running").__dict__))

    async def reopen():
        return Jobs(tmp_path, Uploads(tmp_path / "uploads"), ingest=None).get("abc")

    job = asyncio.run(reopen())
    assert job.status == "interrupted" and "submit the files again" in job.error


def test_non_loopback_without_keys_is_refused():
    with pytest.raises(ConfigError, match="RAGTIDE_API_KEYS"):
        check_bind("0.0.0.0", ServerConfig())
    check_bind("0.0.0.0", ServerConfig(), insecure=True)
    check_bind("0.0.0.0", ServerConfig(api_keys=("k",)))
    check_bind("127.0.0.1", ServerConfig())
    out = subprocess.run(
        [sys.executable, "-m", "ragtide.cli", "serve", "--host", "0.0.0.0", "--uri", "/nonexistent/x.db"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode != 0 and "RAGTIDE_API_KEYS" in out.stderr and "Traceback" not in out.stderr


def test_uber_pdf_over_the_limit_is_413(service):
    _, client, _ = service
    reply = upload(client, UBER)
    assert reply.status_code == 413


def _raw_upload(url: str, name: str, text: bytes, *, send_all: bool) -> None:
    """POST an upload on a bare socket and hang up: half-way through the body, or right after
    the whole of it without reading the reply."""
    import socket
    from urllib.parse import urlsplit

    request = httpx.Request(
        "POST", f"{url}/v1/documents", files=[("files", (name, text))], headers={"Authorization": f"Bearer {KEY}"}
    )
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "connection")
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as s:
        s.sendall(f"POST /v1/documents HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
        s.sendall(body if send_all else body[: len(body) // 2])


def test_a_client_hanging_up_mid_upload_leaves_nothing_and_after_it_loses_nothing(service):
    url, client, uploads = service
    names = lambda: [d["name"] for d in client.get("/v1/documents").json()["documents"]]  # noqa: E731
    _raw_upload(url, "cut.txt", b"Cut off: narwhal tusks are teeth. " * 2000, send_all=False)
    _raw_upload(url, "whole.txt", b"Whole: a group of owls is a parliament.", send_all=True)
    deadline = time.monotonic() + 120  # the whole upload was acknowledged-in-flight: it is ingested
    while "whole.txt" not in names():
        assert time.monotonic() < deadline, names()
        time.sleep(0.2)
    assert client.get("/readyz").status_code == 200
    assert "cut.txt" not in names() and not (uploads / "files" / "cut.txt").exists()
    assert not [p for p in uploads.rglob("*") if p.is_file() and "cut" in p.name]  # no half-received file left


def test_follow_ups_are_read_with_the_conversation(service):
    _, client, _ = service
    first = "What computer did the author first write programs on?"
    reply = client.post(
        "/v1/chat/completions",
        json={
            "model": "ragtide",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": first},
                {"role": "assistant", "content": "The IBM 1401 [1]."},
                {"role": "user", "content": "Which language did he use on it?"},
            ],
        },
    )
    assert reply.status_code == 200 and "Fortran" in reply.json()["choices"][0]["message"]["content"]
    body = {"question": "Which language did he use on it?", "history": [{"role": "user", "content": first}]}
    answer = client.post("/v1/query", json=body).json()
    assert "Fortran" in answer["answer"] and answer["searched"] == f"{first} Which language did he use on it?"
    bad = client.post("/v1/query", json={**body, "history": [{"role": "system", "content": "x"}]})
    assert bad.status_code == 422 and "history" in bad.text
    assistant_last = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": first}, {"role": "assistant", "content": "Bel"}]},
    )
    assert assistant_last.status_code == 422 and "user message" in assistant_last.text
