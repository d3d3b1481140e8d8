"""The store contract, run against Milvus Lite and the real server."""

import asyncio

import numpy as np
import pytest

from ragtide import Chunk, ConfigError, MilvusStore, StoreError
from ragtide.store import Row

DIM = 8


def _rows(n, doc="d", doc_hash="h1", seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        Row(
            Chunk(id=f"{doc}-{i}", doc_id=doc, source=f"/x/{doc}.txt", text=f"text {i}", index=i, start=0, end=1),
            v,
            doc_hash,
            n,
        )
        for i, v in enumerate(vectors)
    ]


def run(coro):
    return asyncio.run(coro)


async def _open(uri, name, **kw):
    store = MilvusStore(uri, name, **kw)
    await store.open("test-model", DIM)
    return store


def test_concurrent_writes_land_exactly_once(backend, collection):
    async def main():
        store = await _open(backend, collection)
        rows = _rows(300)
        await asyncio.gather(*(store.write([r]) for r in rows))  # 300 one-row writes, merged
        await store.write(rows[:50])  # written again: upsert, no duplicates
        states = await store.doc_states(["d"])
        info = await store.info()
        await store.close()
        return states, info

    states, info = run(main())
    assert info.chunks == 300 and info.documents == 1
    assert states["d"].complete and states["d"].chunks == 300


def test_merged_searches_match_one_at_a_time(backend, collection):
    async def main():
        store = await _open(backend, collection)
        rows = _rows(200)
        await store.write(rows)
        queries = [r.vector for r in rows[:40]]
        alone = [await store.search(q, 3) for q in queries]
        together = await asyncio.gather(*(store.search(q, 3) for q in queries))
        await store.close()
        return rows, alone, together

    rows, alone, together = run(main())
    for i, (a, t) in enumerate(zip(alone, together)):
        assert [s.id for s in a] == [s.id for s in t]
        assert t[0].id == rows[i].chunk.id  # each caller got its own nearest row
        assert t[0].score == pytest.approx(1.0, abs=1e-3)
        assert t[0].text == f"text {i}" and t[0].source == "/x/d.txt"
        assert "vector" not in t[0].metadata


def test_repeated_questions_in_one_batch_each_get_their_own_answer(backend, collection):
    """Identical queries are sent to Milvus once per batch; every caller still gets the
    full answer, and distinct queries beside them are not mixed up."""

    async def main():
        store = await _open(backend, collection)
        rows = _rows(100)
        await store.write(rows)
        same, other = rows[7].vector, rows[42].vector
        alone = [await store.search(same, 3), await store.search(other, 3)]
        asked = [same if i % 3 else other for i in range(60)]
        together = await asyncio.gather(*(store.search(q, 3) for q in asked))
        await store.close()
        return alone, asked, together

    alone, asked, together = run(main())
    for query, hits in zip(asked, together):
        expected = alone[0] if query is asked[1] else alone[1]
        assert [h.id for h in hits] == [h.id for h in expected] and len(hits) == 3


def test_a_bad_search_fails_only_its_caller(backend, collection):
    async def main():
        store = await _open(backend, collection)
        await store.write(_rows(20))
        good = _rows(1, seed=3)[0].vector
        results = await asyncio.gather(
            store.search(good, 3),
            store.search(good, 3, filter="no_such_field == 1"),
            store.search(good, 3),
            return_exceptions=True,
        )
        await store.close()
        return results

    first, bad, third = run(main())
    assert len(first) == 3 and len(third) == 3
    assert isinstance(bad, ConfigError) and "no_such_field" in str(bad)


def test_cancelled_search_does_not_hurt_others(backend, collection):
    async def main():
        store = await _open(backend, collection)
        await store.write(_rows(20))
        q = _rows(1, seed=5)[0].vector
        tasks = [asyncio.create_task(store.search(q, 2)) for _ in range(10)]
        await asyncio.sleep(0)
        tasks[0].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
        return results

    results = run(main())
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(len(r) == 2 for r in results[1:])


def test_session_reads_see_own_deletes_and_replacements(backend, collection):
    async def main():
        store = await _open(backend, collection)
        await store.write(_rows(10, doc_hash="v1"))
        await store.write(_rows(4, doc_hash="v2"))  # a new, shorter version of the same doc
        await store.delete_stale("d", "v2")
        after_update = await store.doc_states(["d"])
        await store.delete_docs(["d"])
        after_delete = await store.doc_states(["d"])
        await store.close()
        return after_update, after_delete

    after_update, after_delete = run(main())
    assert after_update["d"].doc_hash == "v2" and after_update["d"].chunks == 4 and after_update["d"].complete
    assert after_delete == {}


def test_collection_remembers_its_model(backend, collection):
    async def main():
        store = await _open(backend, collection)
        await store.close()
        other = MilvusStore(backend, collection)
        try:
            await other.open("another-model", 16)
        finally:
            await other.close()

    with pytest.raises(ConfigError, match="test-model"):
        run(main())


def test_unreachable_server_is_a_clear_error():
    async def main():
        store = MilvusStore("http://127.0.0.1:9", "x", connect_timeout=3)
        await store.open("m", DIM)

    with pytest.raises(StoreError, match="127.0.0.1:9"):
        run(main())


def test_long_and_non_ascii_text_round_trips(backend, collection):
    """Text reaches Milvus whole (up to the VARCHAR byte limit, clipped on a character
    boundary beyond it) whatever the shortcuts taken on the way."""
    long = "Gezeiten — ebb & flow, 潮汐. " * 1500  # ~52,000 bytes of UTF-8
    too_long = "é" * 40000  # 80,000 bytes: over Milvus's 65,535
    rows = _rows(2)
    rows[0].chunk = Chunk(id="long", doc_id="d", source="/x/ü.txt", text=long, index=0, start=0, end=len(long))
    rows[1].chunk = Chunk(id="huge", doc_id="d", source="/x/ü.txt", text=too_long, index=1, start=0, end=len(too_long))

    async def main():
        store = await _open(backend, collection)
        await store.write(rows)
        hits = {h.id: h for h in await store.search(rows[0].vector, 2)}
        hits.update({h.id: h for h in await store.search(rows[1].vector, 2)})
        await store.close()
        return hits

    hits = run(main())
    assert hits["long"].text == long and hits["long"].source == "/x/ü.txt"
    assert hits["huge"].text == "é" * (65535 // 2)


def _count_pymilvus_row_conversions(monkeypatch):
    from pymilvus.client.prepare import Prepare

    calls = []
    for name in ("row_insert_param", "row_upsert_param"):
        original = getattr(Prepare, name).__func__

        def counting(cls, *args, _original=original, **kwargs):
            calls.append(args[0])
            return _original(cls, *args, **kwargs)

        monkeypatch.setattr(Prepare, name, classmethod(counting))
    return calls


def test_writes_skip_pymilvus_row_conversion_and_each_is_read_at_once(backend, collection, monkeypatch):
    """ragtide builds its plain rows' requests itself (see ragtide._wire) yet keeps
    pymilvus's session timestamp: a Session search right after each write sees it."""
    conversions = _count_pymilvus_row_conversions(monkeypatch)

    async def main():
        store = await _open(backend, collection, consistency="Session")
        rows = _rows(15)
        seen = []
        for row in rows:
            await store.write([row])
            seen.append((await store.search(row.vector, 1))[0].id)
        await asyncio.gather(*(store.write([r]) for r in _rows(200, doc="e", seed=2)))
        info = await store.info()
        await store.close()
        return rows, seen, info

    rows, seen, info = run(main())
    assert seen == [r.chunk.id for r in rows]
    assert info.chunks == 215
    assert conversions == []


def test_rows_or_schemas_beyond_the_column_path_still_write(backend, collection, monkeypatch):
    from pymilvus import DataType, MilvusClient

    from ragtide.store import MilvusCollection

    conversions = _count_pymilvus_row_conversions(monkeypatch)
    client = MilvusClient(uri=backend)

    def recreate(dim, dynamic):
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=dynamic)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = MilvusClient.prepare_index_params()
        index.add_index("vector", metric_type="COSINE", index_type="FLAT")
        client.create_collection(collection, schema=schema, index_params=index)

    def row(id, dim, **extra):
        return {"id": id, "vector": np.ones(dim, dtype=np.float32), **extra}

    async def main():
        milvus = MilvusCollection(backend, collection, consistency="Strong")
        converted = []
        recreate(DIM, dynamic=False)
        await milvus.write([row("plain", DIM)])
        converted.append(len(conversions))
        # Recreated under the writer's feet, by someone else: wider, with dynamic fields.
        recreate(DIM * 2, dynamic=True)
        await milvus.write([row("dynamic", DIM * 2, colour="red")])
        converted.append(len(conversions))
        # And again: plain once more.
        recreate(DIM * 2, dynamic=False)
        await milvus.write([row("wider", DIM * 2)])
        converted.append(len(conversions))
        results = await asyncio.gather(
            milvus.write([row("good", DIM * 2)]),
            milvus.write([row("bad", DIM * 2, colour="red")]),
            return_exceptions=True,
        )
        ids = sorted(r["id"] for r in await milvus.query_all("", ["id"]))
        await milvus.close()
        return converted, results, ids

    converted, (good, bad), ids = run(main())
    client.close()
    assert converted == [0, 1, 1]  # only the dynamic row needed pymilvus's row conversion
    assert good is None
    assert isinstance(bad, StoreError) and "colour" in str(bad)  # pymilvus's own message names the field
    assert ids == ["good", "wider"]


def test_a_pymilvus_without_the_internals_used_still_writes(backend, collection, monkeypatch):
    """Should a pymilvus release move what the column path relies on, writes go pymilvus's way."""
    from ragtide.store import _wire

    def moved(handler, kind):
        raise AttributeError("'AsyncGrpcHandler' object has no attribute '_async_stub'")

    monkeypatch.setattr(_wire, "rpc", moved)
    conversions = _count_pymilvus_row_conversions(monkeypatch)

    async def main():
        store = await _open(backend, collection)
        await store.write(_rows(30))
        await store.write(_rows(5, doc="e"))
        info = await store.info()
        await store.close()
        return info

    assert run(main()).chunks == 35
    assert len(conversions) == 2


def test_a_collection_whose_index_another_process_is_still_making_is_retried():
    from ragtide.store.retry import transient

    assert transient(RuntimeError("<MilvusException: (code=700, message=index not found[collection=t_1])>"))
    assert not transient(RuntimeError("collection not found[collection=t_1]"))


def test_a_collection_that_never_held_a_row_finds_nothing_in_every_mode(backend, collection):
    # Milvus Lite fails a full-text search there (its BM25 statistics divide by zero).
    async def main():
        store = await _open(backend, collection)
        modes = ("dense", "lexical", "hybrid") if (await store.info()).lexical else ("dense",)
        vector = _rows(1)[0].vector
        found = {mode: await store.search(vector, 5, text="text", mode=mode) for mode in modes}
        await store.write(_rows(3))
        after = await store.search(vector, 5, text="text", mode=modes[-1])
        await store.close()
        return found, after

    found, after = run(main())
    assert all(hits == [] for hits in found.values()) and len(after) == 3
