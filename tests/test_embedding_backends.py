"""Embedding backends: the same vectors as torch, exports cached safely, int8 kept apart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ESSAY, drop, new_collection
from ragtide import RAG, Embedder
from ragtide.embedding import backends
from ragtide.embedding.cache import ExportCache
from ragtide.errors import ConfigError

pytestmark = pytest.mark.model  # the real embedding model: not in the fast tier

TEXTS = [
    "What did the author do growing up?",
    "Uber's Gross Bookings grew 56% year-over-year in 2021, to $90.4 billion.",
    "short",
    ESSAY.read_text(encoding="utf-8")[:2000],  # longer than the model's limit: truncated alike
]


@pytest.fixture(scope="module")
def torch_vectors():
    e = Embedder(backend="torch")
    yield e.encode(TEXTS), e.encode(TEXTS[:1], query=True)
    e.close()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.mark.parametrize(
    "backend,quantize,agreement",
    [
        ("openvino", "none", 0.9999),
        ("onnx", "none", 0.9999),
        # int8 weights: close, not equal (measured means: openvino 0.9997, onnx 0.992).
        ("openvino", "int8", 0.995),
        ("onnx", "int8", 0.98),
    ],
)
def test_backends_embed_like_torch(backend, quantize, agreement, torch_vectors, cache_dir):
    e = Embedder(backend=backend, quantize=quantize, cache_dir=cache_dir)
    try:
        docs, query = e.encode(TEXTS), e.encode(TEXTS[:1], query=True)
        assert e.backend == backend and e.quantize == quantize
        assert e.runs_on.startswith(backend) and ("int8" in e.runs_on) == (quantize == "int8")
    finally:
        e.close()
    assert docs.dtype == np.float32 and docs.shape == torch_vectors[0].shape
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-5)
    assert (docs * torch_vectors[0]).sum(1).min() > agreement
    assert float(query[0] @ torch_vectors[1][0]) > agreement


def test_the_default_on_a_cpu_is_openvino_with_torch_on_request():
    assert backends.choose("", "", "") == ("openvino", "none")
    assert backends.choose("", "", "cpu") == ("openvino", "none")
    assert backends.choose("", "", "cuda") == ("torch", "none")
    assert backends.choose("torch", "none", "") == ("torch", "none")
    assert backends.choose("", "int8", "")[0] in ("openvino", "onnx")


@pytest.mark.parametrize(
    "backend,quantize,device,reason",
    [
        ("torch", "int8", "", "int8 needs embed_backend onnx or openvino"),
        ("tensorflow", "none", "", "embed_backend: 'tensorflow' is not one of torch, onnx, openvino"),
        ("openvino", "fp4", "", "embed_quantize: 'fp4' is not one of none, int8"),
        ("openvino", "none", "cuda", "runs on the CPU"),
    ],
)
def test_impossible_choices_are_refused_by_name(backend, quantize, device, reason):
    with pytest.raises(ConfigError, match=reason):
        backends.choose(backend, quantize, device)


def test_an_export_is_built_once_and_reused(tmp_path, torch_vectors):
    Embedder(backend="onnx", cache_dir=tmp_path).close()
    (entry,) = (tmp_path / "models").iterdir()
    assert ExportCache.is_whole(entry)
    built = {p.name: p.stat().st_mtime_ns for p in entry.iterdir()}
    e = Embedder(backend="onnx", cache_dir=tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir()} == built
    assert (e.encode(TEXTS) * torch_vectors[0]).sum(1).min() > 0.9999
    e.close()


@pytest.mark.parametrize("damage", ["truncate", "manifest"])
def test_a_corrupt_export_is_rebuilt(tmp_path, torch_vectors, damage):
    Embedder(backend="openvino", cache_dir=tmp_path).close()
    (entry,) = (tmp_path / "models").iterdir()
    if damage == "truncate":  # e.g. a disk that filled up while copying the cache
        weights = entry / "model.bin"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        (entry / "manifest.json").write_text("{not json")
    e = Embedder(backend="openvino", cache_dir=tmp_path)
    assert (e.encode(TEXTS) * torch_vectors[0]).sum(1).min() > 0.9999
    e.close()
    assert ExportCache.is_whole(entry)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [entry.name]  # no leftovers


def test_an_entry_that_loads_badly_is_rebuilt(tmp_path, torch_vectors):
    """A whole-looking entry whose model cannot be read (same sizes, wrong bytes)."""
    Embedder(backend="onnx", cache_dir=tmp_path).close()
    (entry,) = (tmp_path / "models").iterdir()
    model = entry / "model.onnx"
    model.write_bytes(b"\0" * model.stat().st_size)
    e = Embedder(backend="onnx", cache_dir=tmp_path)
    assert (e.encode(TEXTS) * torch_vectors[0]).sum(1).min() > 0.9999
    e.close()


def test_concurrent_first_runs_share_one_whole_export(tmp_path):
    script = textwrap.dedent(f"""
        from ragtide import Embedder
        e = Embedder(backend="openvino", cache_dir={str(tmp_path)!r})
        print(float(e.encode(["hello"])[0] @ e.encode(["hello"])[0]))
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert abs(float(out.strip()) - 1) < 1e-5
    for kind in ("models", "starts"):  # the export and its start recipe, whole; no temporary folders left
        entries = list((tmp_path / kind).iterdir())
        assert len(entries) == 1 and ExportCache.is_whole(entries[0])


def test_a_collection_keeps_int8_and_full_precision_vectors_apart(tmp_path):
    uri, name = str(tmp_path / "q.db"), new_collection()
    with RAG(uri=uri, collection=name, embed_backend="onnx", embed_quantize="int8") as rag:
        assert rag.ingest([ESSAY]).ok
        assert rag.status().quantize == "int8"
    # Not asked: the collection's own kind is used.
    with RAG(uri=uri, collection=name, embed_backend="onnx") as rag:
        assert rag.retrieve("What did the author work on before college?", top_k=3)
    with RAG(uri=uri, collection=name, embed_quantize="none") as rag:
        with pytest.raises(ConfigError, match="int8-weight vectors.*--quantize int8"):
            rag.retrieve("What did the author work on before college?")
    drop(uri, name)


def test_cli_takes_the_backend_and_reports_it(tmp_path):
    uri = str(tmp_path / "cli.db")
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "ragtide.cli", *a], capture_output=True, text=True, timeout=300
    )  # noqa: E731
    result = run("ingest", str(ESSAY), "--uri", uri, "--embed-backend", "onnx", "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    status = run("status", "--uri", uri)
    assert "int8" in status.stdout and "onnx int8" in status.stdout, status.stdout
    refused = run("ingest", str(ESSAY), "--uri", uri, "--embed-backend", "torch", "--quantize", "int8")
    assert refused.returncode == 2 and "int8 needs embed_backend onnx or openvino" in refused.stderr


def test_an_unwritable_cache_is_named_with_the_way_out(tmp_path):
    from ragtide.errors import EmbeddingError

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # root ignores permissions; a file in the path stops anyone
    with pytest.raises(EmbeddingError, match=r"a-file.*RAGTIDE_CACHE_DIR.*--embed-backend torch"):
        Embedder(backend="openvino", cache_dir=blocked / "cache")


LIGHT = """
import json, sys
import numpy as np
from ragtide import Embedder
e = Embedder(cache_dir=sys.argv[1])
texts = json.loads(sys.argv[2])
vectors = np.vstack([e.encode(texts), e.encode(texts[:1], query=True)])
print(json.dumps({"torch": "torch" in sys.modules, "st": "sentence_transformers" in sys.modules, "runs_on": e.runs_on,
                  "limits": [e.max_tokens, e.dim], "spans": e.token_spans(texts[:2]), "vectors": vectors.tolist()}))
"""


def test_a_second_start_needs_neither_torch_nor_sentence_transformers_and_embeds_alike(tmp_path):
    """The first process exports the model and writes a start recipe; the next starts from
    it without importing torch or sentence-transformers (seconds instead of ~12 here), and
    tokenises, embeds and measures chunks exactly as the full load does."""
    texts = [*TEXTS, "  spaces at both ends  ", "", "Ünïcödé — “quotes”"]

    def start() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", LIGHT, str(tmp_path), json.dumps(texts)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    first, second = start(), start()
    assert first["torch"] and first["st"]  # the full load, which wrote the recipe
    (recipe,) = (tmp_path / "starts").iterdir()
    assert ExportCache.is_whole(recipe)
    assert not second["torch"] and not second["st"]
    assert second["runs_on"] == first["runs_on"] and second["limits"] == first["limits"] == [254, 384]
    assert second["spans"] == first["spans"]
    np.testing.assert_allclose(np.array(second["vectors"]), np.array(first["vectors"]), atol=1e-6)


def test_a_damaged_start_recipe_falls_back_to_the_full_load(tmp_path, torch_vectors):
    Embedder(cache_dir=tmp_path).close()
    (recipe,) = (tmp_path / "starts").iterdir()
    (recipe / "recipe.json").write_text("{not json")
    e = Embedder(cache_dir=tmp_path)  # loads the full way, and keeps a whole recipe again
    try:
        assert (e.encode(TEXTS) * torch_vectors[0]).sum(1).min() > 0.9999
    finally:
        e.close()
    assert ExportCache.is_whole(recipe) and json.loads((recipe / "recipe.json").read_text())["dim"] == 384


def test_sentence_vectors_are_kept_and_bounded(embedder, monkeypatch):
    # An answer's sentences come back with the same passages: embedded once, then kept.
    import asyncio

    import ragtide.embedding

    sentences = TEXTS[:3]

    async def twice():
        first = await embedder.embed_sentences(sentences)
        busy = embedder.busy_seconds
        again = await asyncio.gather(*(embedder.embed_sentences(sentences[k:]) for k in range(3)))
        return first, again, embedder.busy_seconds - busy

    first, again, spent = asyncio.run(twice())
    np.testing.assert_allclose(first, embedder.encode(sentences), atol=1e-5)
    assert spent == 0 and all(np.array_equal(v, first[k:]) for k, v in enumerate(again))  # no model call

    monkeypatch.setattr(ragtide.embedding, "SENTENCES_KEPT", 2)
    asyncio.run(embedder.embed_sentences(["one sentence more", "and another one"]))
    assert len(embedder._sentences) == 2  # the oldest went first
