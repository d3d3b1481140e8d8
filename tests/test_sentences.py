"""Sentence vectors: made once at ingest, stored with each chunk, read by the offline answer."""

import dataclasses

import numpy as np
import pytest

from conftest import new_collection
from ragtide import RAG
from ragtide.query.extract import unit_texts
from ragtide.sentences import Embedding, SentenceVectors

MANUAL = """# frobnicate

## Options

-q, --quiet    Print nothing but errors.

-n, --dry-run    Show what would be frobnicated, and change nothing.

## Limits

The queue holds at most 4096 jobs. A job older than 30 days is dropped. Contact the
maintainers at frob@example.org when a job is lost.
"""
QUESTION = "How many jobs does the queue hold?"


def _unit_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_stored_vectors_keep_their_cosines_and_belong_to_their_text_only():
    texts = [f"sentence number {k}" for k in range(20)]
    vectors, questions = _unit_vectors(20), _unit_vectors(50, seed=1)
    stored = SentenceVectors.of(texts, vectors, 65535)
    assert len(stored) == 20 and stored.encoded.isascii()
    kept = np.stack([stored.get(text) for text in texts])
    assert np.abs(kept @ questions.T - vectors @ questions.T).max() < 2e-3  # int8 with a scale per vector
    assert stored.get("a sentence it was not given") is None
    assert SentenceVectors().get(texts[0]) is None


def test_what_does_not_fit_or_does_not_parse_is_simply_not_there():
    texts = [f"sentence number {k}" for k in range(20)]
    small = SentenceVectors.of(texts, _unit_vectors(20), 2200)  # room for the first four
    assert (
        len(small.encoded) <= 2200
        and len(small) == 4
        and small.get(texts[3]) is not None
        and small.get(texts[4]) is None
    )
    for garbage in ("not base64 at all!", "AAAA", SentenceVectors.of(texts, _unit_vectors(20), 65535).encoded[:-40]):
        assert SentenceVectors(garbage).get(texts[0]) is None


def test_chunks_and_their_units_are_embedded_once_each():
    chunks = ["First chunk. Shared sentence.", "Shared sentence. Last one."]
    units = [["First chunk.", "Shared sentence."], ["Shared sentence.", "Last one."]]
    work = Embedding(chunks, units)
    assert work.distinct == [*chunks, "First chunk.", "Shared sentence.", "Last one."]
    vectors = _unit_vectors(len(work.distinct))
    chunk_vectors, stored = work.split(vectors, 65535)
    np.testing.assert_array_equal(chunk_vectors, vectors[:2])
    assert float(stored[1].get("Shared sentence.") @ vectors[3]) > 0.999


def _spied(embedder, monkeypatch) -> list[str]:
    """The sentences ``embedder`` embeds for answers from now on, recorded."""
    embedded: list[str] = []
    original = embedder.embed_sentences

    async def spy(texts):
        embedded.extend(texts)
        return await original(texts)

    monkeypatch.setattr(embedder, "embed_sentences", spy)
    return embedded


@pytest.fixture
def manual(tmp_path):
    path = tmp_path / "frobnicate.md"
    path.write_text(MANUAL)
    return path


def test_an_answer_embeds_no_sentence_when_ingest_stored_them(backend, manual, embedder, monkeypatch):
    stored, embedded = new_collection(), new_collection()
    answers = {}
    for name, keep in ((stored, True), (embedded, False)):
        with RAG(uri=backend, collection=name, embedder=embedder, sentence_vectors=keep) as rag:
            assert rag.ingest([manual]).added == 1
            with monkeypatch.context() as patch:
                weighed = _spied(embedder, patch)
                answers[keep] = rag.query(QUESTION, top_k=2)
            assert bool(weighed) is not keep, weighed
        with RAG(uri=backend, collection=name, embedder=embedder) as rag:
            assert rag.status().sentences
    with_vectors, without = answers[True], answers[False]
    assert "4096 jobs" in with_vectors.text
    assert with_vectors.text == without.text and with_vectors.highlights == without.highlights
    assert all(len(s.sentences) == len(unit_texts(s.text)) for s in with_vectors.sources)
    assert all(len(s.sentences) == 0 for s in without.sources)


def test_turning_sentence_vectors_on_stores_documents_again(lite_dir, manual, embedder):
    uri, name = str(lite_dir / "sentences.db"), new_collection()
    with RAG(uri=uri, collection=name, embedder=embedder, sentence_vectors=False) as rag:
        assert rag.ingest([manual]).added == 1
        assert rag.ingest([manual]).unchanged == 1
    with RAG(uri=uri, collection=name, embedder=embedder) as rag:
        assert rag.ingest([manual]).updated == 1
        found = rag.query(QUESTION, top_k=3).sources
        assert all(len(s.sentences) == len(unit_texts(s.text)) for s in found) and len(found[0].sentences) == 3
        # Only an answer reads them: a search alone does not fetch them.
        assert all(len(s.sentences) == 0 for s in rag.retrieve(QUESTION, top_k=3))


def test_a_collection_made_before_sentence_vectors_answers_as_before(lite_dir, manual, embedder, monkeypatch):
    from ragtide.store import schema

    @dataclasses.dataclass(frozen=True)
    class BeforeSentences(schema.Layout):  # as ragtide made collections before version 4
        sentences: bool = False
        version: int = 3

    uri, name = str(lite_dir / "before.db"), new_collection()
    with monkeypatch.context() as patch:
        patch.setattr(schema, "Layout", BeforeSentences)
        with RAG(uri=uri, collection=name, embedder=embedder, sentence_vectors=False) as rag:
            assert rag.ingest([manual]).added == 1
    with RAG(uri=uri, collection=name, embedder=embedder) as rag:
        assert not rag.status().sentences
        weighed = _spied(embedder, monkeypatch)
        answer = rag.query(QUESTION, top_k=2)
        assert "4096 jobs" in answer.text and weighed
        assert rag.ingest([manual]).unchanged == 1  # its documents' versions are as they were


def test_a_passage_the_unit_rules_fail_on_is_stored_all_the_same(lite_dir, manual, embedder, monkeypatch):
    import ragtide.engine

    def failing(text):
        if "queue" in text:
            raise IndexError("a rule's bug")
        return unit_texts(text)

    monkeypatch.setattr(ragtide.engine, "unit_texts", failing)
    with RAG(uri=str(lite_dir / "failing.db"), collection=new_collection(), embedder=embedder) as rag:
        report = rag.ingest([manual])
        assert report.added == 1 and not report.failed
        answer = rag.query(QUESTION, top_k=2)
    assert "4096 jobs" in answer.text
    assert len(answer.sources[0].sentences) == 0  # the passage with the queue: stored without them
