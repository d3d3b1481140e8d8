"""Milvus insert and upsert requests, built column by column.

pymilvus turns rows into a request one value at a time: a type dispatch per field per
row and a protobuf append per float, ~50 us for a 768-d row and most of what a batch
of small writes costs the client. For the plain schemas ragtide and its LlamaIndex
drop-in create (scalars, VARCHAR, JSON, one float vector), :func:`encode` builds the
same request column by column, the vectors as one packed block: ~3 us a row with
numpy vectors. Anything it does not cover -- a schema feature, a row that does not
fit -- it leaves to pymilvus, whose checks and error messages then apply unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import orjson

from .blocking import ready
from .retry import transient

# Milvus's DataType numbers (schema.proto), spelled out so that importing ragtide does
# not import pymilvus; and where each scalar type's values go in a ScalarField.
_VARCHAR, _JSON, _FLOAT_VECTOR = 21, 23, 101
_SCALAR_SLOTS = {
    1: "bool_data",  # BOOL
    2: "int_data",  # INT8
    3: "int_data",  # INT16
    4: "int_data",  # INT32
    5: "long_data",  # INT64
    10: "float_data",  # FLOAT
    11: "double_data",  # DOUBLE
    _VARCHAR: "string_data",
    _JSON: "json_data",
}


class Unsupported(Exception):
    """The rows or the schema need pymilvus's general path."""


def plain_fields(schema: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The schema's input fields if :func:`encode` can write them all, else None.

    Fields a function fills (a BM25 sparse vector Milvus computes from a text field)
    are not input fields: pymilvus leaves them out of a write, and so does :func:`encode`.
    """
    if schema.get("enable_dynamic_field") or schema.get("struct_array_fields"):
        return None
    outputs = {name for f in schema.get("functions") or [] for name in f.get("output_field_names", [])}
    fields = [f for f in schema.get("fields") or [] if not f.get("is_function_output") and f["name"] not in outputs]
    for f in fields:
        if f.get("auto_id") or f.get("nullable") or f.get("default_value") is not None:
            return None
        if f["type"] not in _SCALAR_SLOTS and f["type"] != _FLOAT_VECTOR:
            return None
    return fields or None


def encode(kind: str, collection: str, rows: Sequence[dict[str, Any]], fields: list[dict[str, Any]]) -> Any:
    """The InsertRequest or UpsertRequest (``kind`` "insert" or "upsert") pymilvus would build for ``rows``.

    Raises :class:`Unsupported` when a row does not match ``fields`` exactly.
    """
    from pymilvus.grpc_gen import milvus_pb2

    request_type = milvus_pb2.InsertRequest if kind == "insert" else milvus_pb2.UpsertRequest
    request = request_type(collection_name=collection, partition_name="", num_rows=len(rows))
    names = {f["name"] for f in fields}
    if any(row.keys() != names for row in rows):
        raise Unsupported("a row's fields differ from the schema's")
    try:
        for f in fields:
            name, dtype = f["name"], f["type"]
            column = [row[name] for row in rows]
            data = request.fields_data.add(field_name=name, type=dtype)
            if dtype == _FLOAT_VECTOR:
                dim = int(f["params"]["dim"])
                data.vectors.dim = dim
                # A packed repeated float is its length and its little-endian bytes:
                # parsing those is a copy, where appending 768k Python floats is not.
                block = _float32_bytes(column, dim)
                data.vectors.float_vector.MergeFromString(b"\x0a" + _varint(len(block)) + block)
                continue
            if dtype == _VARCHAR:
                limit = int(f.get("params", {}).get("max_length", 65535))
                if any(not isinstance(s, str) or len(s) > limit for s in column):
                    raise Unsupported(f"{name}: not a string, or longer than {limit}")
            elif dtype == _JSON:
                if not all(isinstance(v, dict) for v in column):
                    raise Unsupported(f"{name}: not a dict")
                column = [orjson.dumps(v) for v in column]
            getattr(data.scalars, _SCALAR_SLOTS[dtype]).data.extend(column)
    except (TypeError, ValueError, OverflowError, struct.error) as e:
        raise Unsupported(str(e)) from e
    return request


def rpc(handler: Any, kind: str):
    """The Insert or Upsert stub method of a pymilvus connection handler, async or sync."""
    stub = getattr(handler, "_async_stub", None) or handler._stub
    return stub.Insert if kind == "insert" else stub.Upsert


def accepted(response: Any) -> bool:
    """Whether Milvus applied the write (pymilvus's check_status, without the raise)."""
    return response.status.code == 0 and response.status.error_code == 0


def note_write(collection: str, response: Any, handler: Any) -> None:
    """What pymilvus does after a write: its timestamp becomes the collection's last
    write, which Session reads then wait for."""
    from pymilvus.client import ts_utils

    ts_utils.update_collection_ts(collection, response.timestamp, handler.server_address, "")


class RowSender:
    """Sends rows to one collection: as a request built here when the collection's schema
    is a plain one, through the stub of pymilvus's own connection and with pymilvus's own
    bookkeeping (the session timestamp); otherwise, or when the rows do not fit, or Milvus
    refuses the request, through pymilvus's public insert/upsert, whose checks and
    messages then apply."""

    def __init__(self, collection: str, kind: str, timeout: float) -> None:
        self._collection = collection
        self._kind = kind  # "insert" or "upsert"
        self._timeout = timeout
        self._fields: list[dict[str, Any]] | Literal[False] | None = None  # None: not known yet; False: not plain

    def learn(self, description: dict[str, Any]) -> None:
        """Take the collection's schema (``describe_collection``'s answer)."""
        self._fields = plain_fields(description) or False

    async def send(self, client: Any, rows: list[dict[str, Any]]) -> None:
        """Send ``rows`` through ``client``: the async client, or the sync one run by
        :func:`.blocking.run_blocking`."""
        if self._fields is None:
            self.learn(await ready(client.describe_collection(self._collection, timeout=self._timeout)))
        request = self._encoded(rows)
        if request is not None:
            try:
                handler = await ready(client._get_connection())
                response = await ready(rpc(handler, self._kind)(request, timeout=self._timeout))
            except Exception as e:
                if self._column_path_failed(e):
                    raise
            else:
                if self._accepted(response, handler):
                    return
        await ready(getattr(client, self._kind)(self._collection, rows, timeout=self._timeout))

    def _encoded(self, rows: list[dict[str, Any]]) -> Any:
        if not self._fields:
            return None
        try:
            return encode(self._kind, self._collection, rows, self._fields)
        except Unsupported:
            self._fields = None  # look again next time: the collection may have changed
            return None

    def _accepted(self, response: Any, handler: Any) -> bool:
        if accepted(response):
            note_write(self._collection, response, handler)
            return True
        self._fields = None  # refused (a stale schema?): pymilvus's way says why
        return False

    def _column_path_failed(self, error: Exception) -> bool:
        """Whether to raise ``error`` (to be retried) rather than send the rows pymilvus's way.

        Only errors before Milvus accepted the rows come here, so sending them again
        cannot write them twice.
        """
        if transient(error):
            return True
        # pymilvus's internals moved (a newer release): its public path from now on.
        self._fields = False if isinstance(error, AttributeError) else None
        return False


_PACKERS: dict[int, struct.Struct] = {}


def _float32_bytes(column: list[Any], dim: int) -> bytes:
    if all(isinstance(v, np.ndarray) and v.dtype in (np.float32, np.float64) for v in column):
        block = np.stack(column)
        if block.shape != (len(column), dim):
            raise Unsupported(f"vectors of shape {block.shape[1:]}, the field has dim {dim}")
        return block.astype("<f4", copy=False).tobytes()
    if any(isinstance(v, np.ndarray) for v in column):
        raise Unsupported("vectors mix arrays with other types, or an array is not float32/float64")
    # Lists of Python floats: struct packs them twice as fast as numpy converts them.
    packer = _PACKERS.get(dim) or _PACKERS.setdefault(dim, struct.Struct(f"<{dim}f"))
    return b"".join([packer.pack(*v) for v in column])


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
