"""Faults and awkward input: exact final state after a kill, odd paths, many tiny files."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter

import pytest

from conftest import ESSAY, UBER
from ragtide import RAG


def _rows(uri: str) -> list[tuple[str, str, str]]:
    """(id, doc_id, doc_hash) of every row in a Lite file's ragtide collection."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    try:
        rows = client.query("ragtide", filter="", output_fields=["id", "doc_id", "doc_hash"], limit=16384)
    finally:
        client.close()
    return [(r["id"], r["doc_id"], r["doc_hash"]) for r in rows]


# Ingests a folder, printing every write of a document's chunks as it is acknowledged.
INGEST = """
import sys
from ragtide import RAG
def say(e):
    if e.kind == "chunks":
        print(e.path, e.file_chunks_done, e.file_chunks_total, flush=True)
with RAG(uri=sys.argv[2]) as rag:
    sys.exit(0 if rag.ingest([sys.argv[1]], on_progress=say).ok else 1)
"""


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    """A short file and ~150 chunks of the 10-K as text: more than one write request (128 chunks)."""
    from ragtide import load

    d = tmp_path_factory.mktemp("kill")
    (d / "essay.txt").write_text(ESSAY.read_text(encoding="utf-8")[:8000], encoding="utf-8")
    (d / "tenk.txt").write_text(load(UBER).text[:180_000], encoding="utf-8")
    return d


def _ingest(folder, uri) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", INGEST, str(folder), uri],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_ingest_killed_after_a_partial_write_is_completed_exactly(two_files, tmp_path, embedder):
    killed, clean = str(tmp_path / "killed.db"), str(tmp_path / "clean.db")
    proc = _ingest(two_files, killed)
    for line in proc.stdout:  # SIGKILL right after a write of part of a document's chunks
        path, done, total = line.rsplit(" ", 2)
        if 0 < int(done) < int(total):
            break
    else:
        pytest.fail(f"no document was ever partly written: {proc.stderr.read()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)

    with RAG(uri=killed, embedder=embedder) as rag:
        info = rag.status()
    assert info.documents + len(info.incomplete) <= 2, info  # a half-written document is not also counted as stored

    again = _ingest(two_files, killed)  # the same command again
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    with RAG(uri=clean, embedder=embedder) as rag:  # a clean ingest, for reference
        assert rag.ingest([two_files]).ok

    rows, expected = _rows(killed), _rows(clean)
    assert not [i for i, n in Counter(r[0] for r in rows).items() if n > 1]  # no duplicates
    assert sorted(rows) == sorted(expected)  # the same ids, documents and versions: none missing, none stale


@pytest.mark.parametrize("name", ['say "hi".txt', "back\\slash.txt", "both \\\"x\\\".txt", "it's.md"])
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
