import pytest

from conftest import ESSAY, UBER
from ragtide import Chunker, ConfigError, Document, load
from ragtide.text import sentence_spans

pytestmark = pytest.mark.model  # the real tokenizer: chunk sizes are its tokens


def _tokens(embedder, text):
    return len(embedder.token_spans([text])[0])


@pytest.mark.parametrize("path", [ESSAY, UBER], ids=["essay", "uber"])
def test_chunks_never_exceed_the_model_limit(embedder, path):
    doc = load(path)
    chunks = Chunker(embedder).split(doc)
    limit = embedder.max_tokens
    assert limit == 254  # all-MiniLM-L6-v2 reads 256 positions, two are [CLS] and [SEP]
    counts = [_tokens(embedder, c.text) for c in chunks]
    assert max(counts) <= limit
    assert sum(counts) / len(counts) > limit * 0.6  # and they are not needlessly small
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
    # Every word of the document lands in some chunk.
    covered = " ".join(c.text for c in chunks)
    for word in set(doc.text.split()[::97]):
        assert word in covered


def test_chunk_size_beyond_the_model_limit_is_refused(embedder):
    with pytest.raises(ConfigError, match="exceeds the embedding model's limit of 254"):
        Chunker(embedder, size=1024)


def test_smaller_chunks_with_sentence_overlap(embedder):
    doc = load(ESSAY)
    chunks = Chunker(embedder, size=64, overlap=16).split(doc)
    assert max(_tokens(embedder, c.text) for c in chunks) <= 64
    pairs = [(a, b) for a, b in zip(chunks, chunks[1:]) if b.start < a.end]
    # Overlap is whole sentences, so it happens where a short sentence ends a chunk.
    assert len(pairs) > len(chunks) / 4
    for a, b in pairs:
        assert _tokens(embedder, doc.text[b.start : a.end]) <= 16
    # Boundaries fall between sentences: most chunks end with sentence punctuation.
    ends = sum(1 for c in chunks if c.text.rstrip()[-1] in '.!?"')
    assert ends > 0.8 * len(chunks)


def test_pdf_chunks_stay_on_one_page_and_know_it(embedder):
    doc = load(UBER)
    for chunk in Chunker(embedder).split(doc):
        page = doc.pages[chunk.page - 1]
        assert page.start <= chunk.start and chunk.end <= page.end


def test_ids_are_deterministic_and_distinct(embedder):
    text = "The tide is high. " * 200 + "The end."
    doc = Document(key="doc-1", text=text)
    a = Chunker(embedder, size=32, overlap=0).split(doc)
    b = Chunker(embedder, size=32, overlap=0).split(doc)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)  # repeated passages still get distinct ids
    other = Chunker(embedder, size=32, overlap=0).split(Document(key="doc-2", text=text))
    assert not {c.id for c in a} & {c.id for c in other}


def test_a_sentence_longer_than_a_chunk_is_cut_at_token_edges(embedder):
    doc = Document(key="long", text="word " * 2000)
    chunks = Chunker(embedder).split(doc)
    assert all(_tokens(embedder, c.text) <= embedder.max_tokens for c in chunks)
    assert len(chunks) >= 2000 // 254


def test_sentence_spans():
    text = 'He said "Go." Then left!  New para\n\nNext one? Yes. e.g. this stays'
    spans = [text[s:e] for s, e in sentence_spans(text)]
    assert spans[:3] == ['He said "Go."', "Then left!", "New para"]
    assert spans[3:] == ["Next one?", "Yes. e.g. this stays"]
