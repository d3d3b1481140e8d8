"""Chunking must never lose text: not to another thread using the model, not on huge files."""

import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import ESSAY
from ragtide import Chunker, Document
from ragtide.errors import ChunkingError
from ragtide.ingest.chunking import _check_coverage

pytestmark = pytest.mark.model  # the real tokenizer and model, in subprocesses


def _covers(doc, chunks):
    """Every non-space character of the document lies in some chunk."""
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start : c.end] = b"\1" * (c.end - c.start)
    return all(covered[i] or ch.isspace() for i, ch in enumerate(doc.text))


def test_chunking_while_the_model_encodes_loses_nothing(embedder):
    """The model's tokenizer is reconfigured by every encode; chunking used to share it and
    came back truncated (6 of 1,932 splits here) while another thread embedded."""
    text = ESSAY.read_text()
    docs = [Document(key=f"slice-{i}", text=text[i * 61 : i * 61 + 1800]) for i in range(120)]
    expected = {d.key: [(c.start, c.end) for c in Chunker(embedder).split(d)] for d in docs}
    stop = threading.Event()

    def encode_forever():  # small batches: the model's tokenizer is reconfigured all the time
        while not stop.is_set():
            embedder.encode([text[:300]])

    worker = threading.Thread(target=encode_forever)
    worker.start()
    try:
        chunker = Chunker(embedder)
        got = {}
        for _ in range(10):
            for d in docs:
                chunks = chunker.split(d)
                assert _covers(d, chunks), d.key
                got.setdefault(d.key, [(c.start, c.end) for c in chunks])
                assert [(c.start, c.end) for c in chunks] == expected[d.key]
    finally:
        stop.set()
        worker.join()


def test_coverage_check_refuses_chunks_that_leave_text_out(embedder):
    doc = Document(key="d.txt", text="First sentence here. Second sentence there. Third one.")
    _check_coverage(doc, [(0, 20), (21, 43), (44, len(doc.text))], embedder)  # whole: fine
    with pytest.raises(ChunkingError, match=r"d.txt: chunks leave out characters 20-44 of 54"):
        _check_coverage(doc, [(0, 20), (44, len(doc.text))], embedder)


def test_huge_document_is_chunked_in_bounded_memory_and_like_a_small_one(embedder, tmp_path):
    """A 10 MB text used to be tokenized in one call (8.7 GB for 50 MB, so about 1.7 GB here); now a window at a time."""
    script = textwrap.dedent(
        """
        import resource, sys
        from ragtide import Embedder, Chunker, load
        emb = Embedder()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        doc = load(sys.argv[1])
        n = len(Chunker(emb).boundaries(doc))
        print(n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    essay = ESSAY.read_text()
    big = tmp_path / "big.txt"
    big.write_text(essay * (10_000_000 // len(essay)))
    out = subprocess.run([sys.executable, "-c", script, str(big)], capture_output=True, text=True, check=True).stdout
    chunks, grown_mb = map(int, out.split())
    per_copy = len(Chunker(embedder).split(Document(key="e", text=essay)))
    assert chunks >= per_copy * (10_000_000 // len(essay)) * 0.95
    assert grown_mb < 400, f"chunking 10 MB grew the process by {grown_mb} MB"


def test_windowed_chunks_equal_whole_text_chunks(embedder, monkeypatch):
    import ragtide.ingest.chunking as chunking

    doc = Document(key="e", text=ESSAY.read_text() * 3)
    windowed = [(c.start, c.end, c.id) for c in Chunker(embedder).split(doc)]
    monkeypatch.setattr(chunking, "WINDOW", 10**9)
    whole = [(c.start, c.end, c.id) for c in Chunker(embedder).split(doc)]
    assert windowed == whole
