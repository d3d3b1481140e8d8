"""`ragtide serve` replicas: two services sharing an upload folder (a shared volume) and a
Milvus server. A job submitted to one is visible, with its progress, from the other; it
is ingested by the replica that took it, only; either replica can cancel it; a replica
starting while another runs a job leaves it running."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import ESSAY, SERVER_URI, drop, new_collection
from ragtide import RAG

pytestmark = [pytest.mark.server, pytest.mark.model]


@pytest.fixture
def shared(tmp_path, embedder):
    """The configuration of each replica (one upload folder, one collection) and an engine each."""
    pytest.importorskip("fastapi")
    if not SERVER_URI:
        pytest.skip("no Milvus server: run `make test`, or set RAGTIDE_TEST_SERVER_URI")
    from ragtide.server import ServerConfig
    from ragtide.settings import Settings

    name = new_collection()
    config = ServerConfig(
        upload_dir=tmp_path / "shared-volume", settings=Settings.load(uri=SERVER_URI, collection=name)
    )
    engines = [RAG(settings=config.settings, embedder=embedder) for _ in range(2)]
    yield config, engines
    for engine in engines:
        engine.close()
    drop(SERVER_URI, name)


def wait(url: str, job_id: str, until: tuple[str, ...], seen: list[dict]) -> dict:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=30).json()
        seen.append(job)
        if job["status"] in until:
            return job
        time.sleep(0.1)
    pytest.fail(f"job {job_id} still {seen[-1]['status']}")


def test_a_job_taken_by_one_replica_is_seen_and_cancelled_from_another(shared, monkeypatch):
    from ragtide.server import jobs
    from server_fixture import running

    monkeypatch.setattr(jobs, "HEARTBEAT_S", 0.2)  # a cancel passed on acts within 0.2 s, not 2
    config, (first, second) = shared
    essay = ESSAY.read_bytes()
    with running(config, first) as a:
        upload = httpx.post(f"{a}/v1/documents", files=[("files", ("essay.txt", essay))], timeout=60)
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["job"]["id"]
        # The second replica starts while the first runs the job: it leaves the job alone.
        with running(config, second) as b:
            seen: list[dict] = []
            done = wait(b, job_id, ("done", "failed", "interrupted"), seen)
            assert done["status"] == "done" and done["added"] == 1 and done["chunks"] > 0, done
            assert {job["replica"] for job in seen} == {upload.json()["job"]["replica"]}  # the first ran it, only
            assert any(job["status"] == "running" for job in seen)  # progress read while it ran
            answer = httpx.post(f"{b}/v1/query", json={"question": "What did the author work on?"}, timeout=60)
            assert answer.json()["sources"][0]["source"] == "essay.txt"

            # A cancel sent to the replica that does not run the job reaches the one that does.
            # Text the session's model has not embedded yet: the job takes seconds.
            backwards = " ".join(reversed(ESSAY.read_text(encoding="utf-8").split())).encode()
            again = httpx.post(f"{a}/v1/documents", files=[("files", ("backwards.txt", backwards))], timeout=60)
            second_id = again.json()["job"]["id"]
            cancelled = httpx.delete(f"{b}/v1/jobs/{second_id}", timeout=60).json()
            assert cancelled["status"] == "cancelled", cancelled
            assert httpx.get(f"{a}/v1/jobs/{second_id}", timeout=30).json()["status"] == "cancelled"
            names = [d["source"] for d in httpx.get(f"{a}/v1/documents", timeout=30).json()["documents"]]
            assert names == ["essay.txt"]
