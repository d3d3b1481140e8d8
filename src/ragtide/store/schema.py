"""ragtide's collection schema: chunks, their document's identity and version, a dense
vector and, where the backend has full-text search, a BM25 sparse vector Milvus computes.

What a collection was built with (model, dimension, whether it has the full-text field)
is written into its description, so any later process can check and use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..vocabulary import MAX_TENANT
from .values import MAX_VARCHAR

# 1: dense only; 2: adds the analysed text and its BM25 sparse vector where supported;
# 3: adds the tenant, a partition key (collections shared by tenants, see docs/service.md);
# 4: adds the vectors of each chunk's answer units (see ragtide.sentences)
VERSION = 4

DENSE_FIELD = "vector"
TENANT_FIELD = "tenant"
SPARSE_FIELD = "sparse"
SENTENCES_FIELD = "sentences"
# English analyzer: standard tokenizer, lowercase, English stemmer and stop words, so
# "infections" finds "infection" and "the" weighs nothing. Milvus's default analyzer
# (standard, no stemming, no stop words) ranks below it: see docs/benchmarks.md, "Retrieval and answer quality".
ANALYZER = {"type": "english"}

# Fields every search returns; the vectors are deliberately not among them. A search for an
# answer adds SENTENCES_FIELD (a few KB a hit, for the top_k hits only, not the legs' hundreds).
OUTPUT_FIELDS = ["doc_id", "source", "page", "chunk_index", "start", "end", "text", "metadata"]


@dataclass(frozen=True)
class Layout:
    """How a collection was built."""

    model: str
    dim: int
    lexical: bool  # has the BM25 full-text field
    version: int = VERSION
    quantize: str = "none"  # int8 vectors are close to fp32's, not the same: one kind per collection
    backend: str = ""  # what embedded the first rows, for the record (fp32 backends agree to 1e-4)
    tenants: bool = True  # has the tenant field (collections made before version 3 do not)
    sentences: bool = True  # has the answer units' vectors (collections made before version 4 do not)

    def describe(self) -> str:
        return json.dumps(
            {
                "ragtide": self.version,
                "model": self.model,
                "dim": self.dim,
                "lexical": self.lexical,
                "quantize": self.quantize,
                "backend": self.backend,
                "tenants": self.tenants,
                "sentences": self.sentences,
            }
        )

    def check(self, collection: str, model: str, dim: int, quantize: str) -> None:
        """Raise ConfigError unless vectors of ``model`` (``dim``-d, ``quantize`` weights) belong here."""
        if self.model != model or self.dim != dim:
            raise ConfigError(
                f"collection {collection!r} holds {self.dim}-d vectors from embedding model {self.model!r}, "
                f"not {model!r} ({dim}-d); use that model, or another collection for this one"
            )
        if self.quantize != quantize:
            raise ConfigError(
                f"collection {collection!r} holds {_weights(self.quantize)} vectors of {model!r}, and "
                f"{_weights(quantize)} ones would not rank alike; use --quantize {self.quantize}, "
                "or another collection"
            )

    @classmethod
    def read(cls, description: dict[str, Any], collection: str, uri: str) -> Layout:
        try:
            meta = json.loads(description.get("description") or "")
            return cls(
                str(meta["model"]),
                int(meta["dim"]),
                bool(meta.get("lexical", False)),
                int(meta.get("ragtide", 1)),
                str(meta.get("quantize", "none")),
                str(meta.get("backend", "")),
                bool(meta.get("tenants", False)),
                bool(meta.get("sentences", False)),
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"collection {collection!r} at {uri} was not created by ragtide; choose another --collection"
            ) from None


def _weights(quantize: str) -> str:
    return "int8-weight" if quantize == "int8" else "full-precision"


def build(layout: Layout, dense_index: dict[str, Any], partition_key: bool = True):
    """The schema and index parameters of a new collection with ``layout`` (``partition_key``:
    whether the tenant field is one, where the backend can filter on it)."""
    from pymilvus import AsyncMilvusClient, DataType, Function, FunctionType

    schema = AsyncMilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description=layout.describe())
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
    schema.add_field("doc_hash", DataType.VARCHAR, max_length=64)
    schema.add_field("n_chunks", DataType.INT64)
    schema.add_field("source", DataType.VARCHAR, max_length=4096)
    schema.add_field("page", DataType.INT64)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    if layout.lexical:
        schema.add_field(
            "text", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True, analyzer_params=ANALYZER
        )
    else:
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("metadata", DataType.JSON)
    if layout.tenants:
        # A partition key: Milvus keeps each tenant's rows together and a search scoped to one
        # tenant reads only its partition (Milvus's advice for many tenants in one collection).
        schema.add_field(TENANT_FIELD, DataType.VARCHAR, max_length=MAX_TENANT, is_partition_key=partition_key)
    if layout.sentences:
        schema.add_field(SENTENCES_FIELD, DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field(DENSE_FIELD, DataType.FLOAT_VECTOR, dim=layout.dim)
    index = AsyncMilvusClient.prepare_index_params()
    index.add_index(DENSE_FIELD, metric_type="COSINE", **dense_index)
    if layout.lexical:
        schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=[SPARSE_FIELD],
            )
        )
        index.add_index(SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return schema, index


def at_least(version: str, wanted: tuple[int, int]) -> bool | None:
    """Whether a Milvus server of ``version`` ("v2.3.5") is ``wanted`` or later; None if unknown."""
    m = re.match(r"v?(\d+)\.(\d+)", version or "")
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2))) >= wanted
