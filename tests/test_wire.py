"""Column-built write requests are the very requests pymilvus builds, or are not built."""

import numpy as np
import pytest
from pymilvus import DataType
from pymilvus.client.prepare import Prepare

from ragtide.store import varchar
from ragtide.store._wire import Unsupported, encode, plain_fields

FIELDS = [
    {"name": "id", "type": DataType.VARCHAR, "params": {"max_length": 64}, "is_primary": True},
    {"name": "n", "type": DataType.INT64, "params": {}},
    {"name": "page", "type": DataType.INT32, "params": {}},
    {"name": "small", "type": DataType.INT8, "params": {}},
    {"name": "flag", "type": DataType.BOOL, "params": {}},
    {"name": "f", "type": DataType.FLOAT, "params": {}},
    {"name": "d", "type": DataType.DOUBLE, "params": {}},
    {"name": "text", "type": DataType.VARCHAR, "params": {"max_length": 65535}},
    {"name": "meta", "type": DataType.JSON, "params": {}},
    {"name": "v", "type": DataType.FLOAT_VECTOR, "params": {"dim": 5}},
]


def _rows(n=40):
    rng = np.random.default_rng(1)
    return [
        {
            "id": f"x{i}",
            "n": i * 10**12,
            "page": -i,
            "small": i % 100,
            "flag": i % 2 == 0,
            "f": 0.1 * i,
            "d": i / 3,
            "text": varchar("héllo ☃ " * i),
            "meta": {"a": [1, 2.5, {"b": None}], "ü": "x", "i": i},
            "v": rng.standard_normal(5).astype(np.float32),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("kind", ["insert", "upsert"])
@pytest.mark.parametrize("vectors", ["float32", "float64", "lists"])
def test_same_request_as_pymilvus(kind, vectors):
    rows = _rows()
    theirs = (Prepare.row_insert_param if kind == "insert" else Prepare.row_upsert_param)("c", rows, "", FIELDS, [])
    if vectors == "float64":
        rows = [dict(r, v=r["v"].astype(np.float64)) for r in rows]
    elif vectors == "lists":
        rows = [dict(r, v=r["v"].tolist()) for r in rows]
    ours = encode(kind, "c", rows, FIELDS)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},  # a field the schema lacks: pymilvus names it
        {"n": 1.5},
        {"n": 2**70},
        {"text": 5},
        {"id": "x" * 65},  # longer than max_length
        {"meta": {1: "non-string key"}},
        {"meta": "[1, 2]"},  # JSON given as a string: pymilvus's own rules apply
        {"v": [1.0, 2.0]},  # wrong dimension
        {"v": np.zeros(5, dtype=np.float16)},
    ],
)
def test_rows_that_do_not_fit_are_left_to_pymilvus(change):
    rows = _rows(3)
    rows[1] = {**rows[1], **change}
    with pytest.raises(Unsupported):
        encode("insert", "c", rows, FIELDS)


def test_a_missing_field_is_left_to_pymilvus():
    rows = _rows(3)
    del rows[2]["page"]
    with pytest.raises(Unsupported):
        encode("insert", "c", rows, FIELDS)


def test_fields_a_function_fills_are_left_out_as_pymilvus_does():
    """ragtide's hybrid collections: Milvus computes the BM25 sparse vector from the text."""
    sparse = {"name": "sparse", "type": DataType.SPARSE_FLOAT_VECTOR, "params": {}, "is_function_output": True}
    functions = [{"name": "bm25", "type": 1, "input_field_names": ["text"], "output_field_names": ["sparse"]}]
    schema = {"fields": FIELDS + [sparse], "functions": functions}
    assert plain_fields(schema) == FIELDS
    rows = _rows()
    theirs = Prepare.row_upsert_param("c", rows, "", FIELDS + [sparse], [])
    ours = encode("upsert", "c", rows, plain_fields(schema))
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    "change",
    [
        {"enable_dynamic_field": True},
        {"fields": FIELDS + [{"name": "s", "type": DataType.SPARSE_FLOAT_VECTOR, "params": {}}]},
        {"fields": FIELDS + [{"name": "opt", "type": DataType.INT64, "params": {}, "nullable": True}]},
        {"fields": [{**FIELDS[0], "type": DataType.INT64, "auto_id": True}] + FIELDS[1:]},
    ],
)
def test_only_plain_schemas_are_built_column_wise(change):
    assert plain_fields({"fields": FIELDS}) == FIELDS
    assert plain_fields({"fields": FIELDS, **change}) is None
