"""Faults and awkward input: exact final state after a kill, odd paths, many tiny files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ESSAY, RAGTIDE_CLI, SERVER_DATA, SERVER_URI, UBER, drop, new_collection, run_cli
from ragtide import RAG
from ragtide.errors import StoreError

pytestmark = pytest.mark.model  # the real embedding model: not in the fast tier

# Prints (id, doc_id, doc_hash) of every row of a collection, as JSON. In a process of its
# own: a process that opened a Lite file holds it until it exits.
ROWS = """
import json, sys
from pymilvus import MilvusClient
client = MilvusClient(uri=sys.argv[1])
client.load_collection(sys.argv[2])  # a restarted server may not have reloaded it yet
rows = client.query(sys.argv[2], filter="", output_fields=["id", "doc_id", "doc_hash"], limit=16384,
                    consistency_level="Strong")
print(json.dumps([(r["id"], r["doc_id"], r["doc_hash"]) for r in rows]))
"""


def _rows(uri: str, collection: str = "ragtide") -> list[tuple[str, str, str]]:
    """(id, doc_id, doc_hash) of every row in a collection."""
    out = subprocess.run([sys.executable, "-c", ROWS, uri, collection], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [tuple(row) for row in json.loads(out.stdout)]


# Ingests a folder, printing every write of a document's chunks as it is acknowledged.
INGEST = """
import sys
from ragtide import RAG
def say(e):
    if e.kind in ("chunked", "chunks") or e.kind == "file" and e.outcome in ("added", "updated"):
        print(e.path, e.file_chunks_done, e.file_chunks_total, flush=True)
with RAG(uri=sys.argv[2], collection=sys.argv[3]) as rag:
    sys.exit(0 if rag.ingest([sys.argv[1]], on_progress=say).ok else 1)
"""


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    """A short file and ~360 chunks of the 10-K as text: several write requests (128 chunks
    each), and on a fast machine still being embedded well after the short one is stored."""
    from ragtide import load

    d = tmp_path_factory.mktemp("kill")
    (d / "essay.txt").write_text(ESSAY.read_text(encoding="utf-8")[:8000], encoding="utf-8")
    (d / "tenk.txt").write_text(load(UBER).text[:450_000], encoding="utf-8")
    return d


def _ingest(folder, uri, collection="ragtide", **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", INGEST, str(folder), uri, collection],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _after_a_write(proc: subprocess.Popen, *, whole: bool) -> None:
    """Read ``proc``'s progress until a write leaves a document whole (``whole``) or only
    part of its chunks written."""
    for line in proc.stdout:
        path, done, total = line.rsplit(" ", 2)
        if (int(done) == int(total)) if whole else (0 < int(done) < int(total)):
            return
    pytest.fail(f"no document was ever {'wholly' if whole else 'partly'} written: {proc.stderr.read()[-2000:]}")


def _exact(rows: list[tuple[str, str, str]], expected: list[tuple[str, str, str]]) -> None:
    assert not [i for i, n in Counter(r[0] for r in rows).items() if n > 1]  # no duplicates
    assert sorted(rows) == sorted(expected)  # the same ids, documents and versions: none missing, none stale


@pytest.fixture(scope="module")
def clean_rows(two_files, tmp_path_factory, embedder):
    """The rows a clean, uninterrupted ingest of ``two_files`` writes."""
    uri = str(tmp_path_factory.mktemp("clean") / "clean.db")
    with RAG(uri=uri, embedder=embedder) as rag:
        assert rag.ingest([two_files]).ok
    return _rows(uri)


def test_an_ingest_killed_while_embedding_between_writes_and_after_a_partial_write_is_completed_exactly(
    two_files, clean_rows, tmp_path, embedder
):
    killed = str(tmp_path / "killed.db")
    first = _ingest(two_files, killed)
    first.stdout.readline()  # a document is chunked: its chunks are being embedded, none written
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)

    # The same command again, killed as a write has just stored a document whole and the
    # other's chunks are still to be written.
    second = _ingest(two_files, killed)
    _after_a_write(second, whole=True)
    second.send_signal(signal.SIGKILL)
    second.communicate(timeout=60)

    third = _ingest(two_files, killed)  # and again, killed with part of a document's chunks written
    _after_a_write(third, whole=False)
    third.send_signal(signal.SIGKILL)
    third.communicate(timeout=60)
    with RAG(uri=killed, embedder=embedder) as rag:
        info = rag.status()
    assert info.documents + len(info.incomplete) <= 2, info  # a half-written document is not also counted as stored

    last = _ingest(two_files, killed)  # and again: it completes the work
    _, err = last.communicate(timeout=600)
    assert last.returncode == 0, err
    _exact(_rows(killed), clean_rows)


@pytest.mark.parametrize("name", ['say "hi".txt', "back\\slash.txt", 'both \\"x\\".txt', "it's.md"])
def test_a_path_with_quotes_or_backslashes_is_ingested_and_deleted_alone(name, tmp_path, backend, collection, embedder):
    d = tmp_path / "odd"
    d.mkdir()
    odd = d / name
    odd.write_text(f"The odd file {name} talks about neap tides.", encoding="utf-8")
    (d / "plain.txt").write_text("The plain file talks about spring tides.", encoding="utf-8")
    (d / 'say "hi" too.txt').write_text("A neighbour with quotes in its name.", encoding="utf-8")
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        assert rag.ingest([d]).added == 3
        assert rag.delete(str(odd)) == 1
        left = sorted(rag.documents().values())
        assert left == sorted(str(p.resolve()) for p in d.iterdir() if p != odd)
        assert all(name not in s.source for s in rag.retrieve("neap tides", top_k=5, mode="dense"))


def test_two_thousand_tiny_files_are_all_stored_once(tmp_path, embedder):
    d = tmp_path / "tiny"
    for i in range(2000):
        sub = d / f"{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note-{i}.txt").write_text(f"Note {i}: the tide table for day {i} lists {i % 24} high waters.")
    uri = str(tmp_path / "tiny.db")
    with RAG(uri=uri, embedder=embedder) as rag:
        first = rag.ingest([d])
        assert first.ok and first.added == 2000 and first.chunks == 2000
        info = rag.status()
        assert info.documents == 2000 and info.chunks == 2000
        second = rag.ingest([d])
        assert second.added == 0 and second.unchanged == 2000


def test_a_document_changed_during_its_ingest_is_stored_as_one_version(two_files, clean_rows, tmp_path, embedder):
    folder = tmp_path / "changing"
    shutil.copytree(two_files, folder)
    uri = str(tmp_path / "changing.db")
    proc = _ingest(folder, uri)
    _after_a_write(proc, whole=False)  # the 10-K was read and is being written: now it changes
    tenk = folder / "tenk.txt"
    tenk.write_text("\n".join(reversed(tenk.read_text(encoding="utf-8").splitlines())), encoding="utf-8")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    # The version that was read, whole: as many rows of each version as a clean ingest of the
    # original files (the ids differ: they derive from the files' paths).
    assert Counter(h for _, _, h in _rows(uri)) == Counter(h for _, _, h in clean_rows)

    again = _ingest(folder, uri)  # the next run sees the change and replaces the version
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    versions = Counter(doc_hash for _, doc_id, doc_hash in _rows(uri))
    assert len(versions) == 2  # one per document: no rows of the old 10-K left
    with RAG(uri=uri, embedder=embedder) as rag:
        info = rag.status()
    assert info.documents == 2 and not info.incomplete


@contextmanager
def _small_disk(path: Path, size: str):
    path.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small disk here (needs root): {mount.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_or_read_only_disk_is_named_and_nothing_half_written_counts(tmp_path):
    note = tmp_path / "tides.txt"
    note.write_text("Neap tides come at the quarter moons, when sun and moon pull at right angles.", encoding="utf-8")
    with _small_disk(tmp_path / "disk", "40m") as disk:
        uri = str(disk / "r.db")
        first = run_cli("ingest", str(ESSAY), "--uri", uri)
        assert first.returncode == 0, first.stderr
        with open(disk / "filler", "wb") as filler:  # fill the disk
            try:
                while True:
                    filler.write(b"\0" * (1 << 20))
                    filler.flush()
            except OSError:
                pass
        full = run_cli("ingest", str(note), "--uri", uri)
        assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and "tides.txt: " in errors[0] and "the disk holding it is full" in errors[0], (
            full.stderr
        )
        (disk / "filler").unlink()
        status = run_cli("status", "--uri", uri)
        assert "1 documents" in status.stdout and "partly" not in status.stdout, status.stdout

        assert subprocess.run(["mount", "-o", "remount,ro", str(disk)]).returncode == 0
        for args in (("ingest", str(note)), ("query", "When do neap tides come?"), ("status",)):
            ro = run_cli(*args, "--uri", uri)
            assert ro.returncode != 0 and "Traceback" not in ro.stderr, ro.stderr
            assert ro.stderr.strip() == (
                f"error: cannot open Milvus Lite database {uri}: it is not writable (a read-only "
                "file or file system), and Milvus Lite needs to write to it even to search it"
            )


@pytest.mark.server
@pytest.mark.skipif(not SERVER_URI, reason="needs the test server: run `make test`")
def test_two_ingests_of_one_folder_at_once_and_queries_meanwhile(two_files, clean_rows, embedder):
    """Two processes ingest the same folder into one new collection while this one queries it."""
    name = new_collection()
    try:
        first, second = _ingest(two_files, SERVER_URI, name), _ingest(two_files, SERVER_URI, name)
        _after_a_write(first, whole=False)
        answered = 0
        with RAG(uri=SERVER_URI, collection=name, embedder=embedder) as rag:
            while first.poll() is None or second.poll() is None:  # queries work while both write
                answered += bool(rag.retrieve("What did the author work on?", top_k=3))
        for proc in (first, second):
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
        assert answered > 0
        _exact(_rows(SERVER_URI, name), clean_rows)
    finally:
        drop(SERVER_URI, name)


# -- Milvus itself failing: the test server SIGKILLed and restarted on its data dir and port --

ROOT = Path(__file__).resolve().parents[1]


def restarts_server(test):
    """Marks a test that kills the shared test server: it runs last, and only under `make test`."""
    needs = pytest.mark.skipif(
        not (SERVER_URI and SERVER_DATA),
        reason="needs the test server and its data dir (RAGTIDE_TEST_SERVER_DATA): run `make test`",
    )
    return pytest.mark.server(pytest.mark.restarts_server(needs(test)))


@pytest.fixture
def server_collections():
    """Names for the test's collections; afterwards the server is up again, whatever the test
    did, and they are dropped."""
    names = [new_collection(), new_collection()]
    yield names
    port = int(SERVER_URI.rsplit(":", 1)[1])
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) != 0:
            _start_server()
    for name in names:
        drop(SERVER_URI, name)


def _kill_server() -> None:
    """SIGKILL the whole test server, as a crash or the OOM killer would, and wait until its port is free."""
    data = ROOT / SERVER_DATA
    os.killpg(int((data / "server.pid").read_text()), signal.SIGKILL)
    port = int(SERVER_URI.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)
    pytest.fail("the killed server's port stayed open")


def _start_server() -> float:
    """Start it again on the same data dir and port; the seconds until it answers."""
    started = time.monotonic()
    port = SERVER_URI.rsplit(":", 1)[1]
    up = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "milvus_server.py"),
            "up",
            "--port",
            port,
            "--data",
            str(ROOT / SERVER_DATA),
            "--timeout",
            "300",
        ],
        capture_output=True,
        text=True,
        timeout=330,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    return time.monotonic() - started


def _cli_ingest(folder, collection: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [*RAGTIDE_CLI, "ingest", str(folder), "--uri", SERVER_URI, "--collection", collection],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@restarts_server
def test_milvus_away_longer_than_the_retry_time(two_files, clean_rows, embedder, tmp_path, server_collections):
    """Queries fail with one clear line (Python API) or a 503 JSON error (service) and an
    ingest gives up naming what it did not store; all work again once Milvus is back,
    without restarting the ragtide process or the service."""
    pytest.importorskip("fastapi")
    import httpx

    from ragtide.server import ServerConfig
    from ragtide.settings import Settings
    from server_fixture import running

    questions, name = server_collections
    note = tmp_path / "tides.txt"
    note.write_text("Spring tides come twice a month, at the new and the full moon.", encoding="utf-8")
    config = ServerConfig(upload_dir=tmp_path / "uploads", settings=Settings.load(uri=SERVER_URI, collection=questions))
    ask = {"question": "When are spring tides?", "top_k": 1}
    with RAG(settings=config.settings, embedder=embedder) as rag:
        assert rag.ingest([note]).ok
        with running(config, rag) as url:
            assert httpx.post(f"{url}/v1/query", json=ask, timeout=120).status_code == 200

            ingest = _cli_ingest(two_files, name, RAGTIDE_RETRY_S="5")
            seen = []
            for line in ingest.stderr:  # the essay is stored; the 10-K is on its way
                seen.append(line)
                if "essay.txt:" in line:
                    break
            _kill_server()
            _, err = ingest.communicate(timeout=300)
            err = "".join(seen) + err
            assert ingest.returncode == 1, err
            assert "Traceback" not in err and "AioRpcError" not in err, err
            errors = [line for line in err.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and "tenk.txt: " in errors[0] and "Milvus is unreachable" in errors[0], err

            with pytest.raises(StoreError, match="Milvus is unreachable|did not answer") as failed:
                rag.retrieve(ask["question"], top_k=1)
            assert "\n" not in str(failed.value) and "AioRpcError" not in str(failed.value)
            down = httpx.post(f"{url}/v1/query", json=ask, timeout=120)
            assert down.status_code == 503 and down.json()["error"]["type"] == "StoreError", down.text
            assert "Milvus is unreachable" in down.json()["error"]["message"] or "did not answer" in down.text

            _start_server()
            assert rag.retrieve(ask["question"], top_k=1)[0].source == str(note.resolve())
            back = httpx.post(f"{url}/v1/query", json=ask, timeout=120)
            # The service names a document by its file's name, never by a server path.
            assert back.status_code == 200 and back.json()["sources"][0]["source"] == note.name, back.text

    again = _cli_ingest(two_files, name)  # the same command again completes the work
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    _exact(_rows(SERVER_URI, name), clean_rows)


@restarts_server
def test_an_ingest_waits_for_a_restarted_milvus_and_completes_exactly(
    two_files, clean_rows, server_collections, figure
):
    name = server_collections[0]
    proc = _ingest(two_files, SERVER_URI, name, RAGTIDE_RETRY_S="300")
    _after_a_write(proc, whole=False)
    lines: list[float] = []  # when each later progress line came
    errors: list[str] = []
    readers = [
        threading.Thread(target=lambda: lines.extend(time.monotonic() for _ in proc.stdout), daemon=True),
        threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    _kill_server()
    killed = time.monotonic()
    back = killed + _start_server()
    returncode = proc.wait(timeout=600)
    for reader in readers:
        reader.join(timeout=10)
    assert returncode == 0, "".join(errors)[-2000:]
    _exact(_rows(SERVER_URI, name), clean_rows)
    resumed = [t - back for t in lines if t > back]
    figure(
        f"server answering {back - killed:.0f} s after the kill; the ingest wrote again "
        + (f"{resumed[0]:.1f} s after that" if resumed else "(its last write had landed before the kill)")
    )
