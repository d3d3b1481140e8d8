"""The vector store: the :class:`Store` seam and its Milvus implementation.

Rooms, one concept each:

- :mod:`.base`: the ``Store`` protocol and the data crossing it (rows, collection info, fusion).
- :mod:`.milvus`: :class:`MilvusStore`, a ragtide collection (documents, versions, search modes).
- :mod:`.schema`: the collection's fields, indexes and the layout recorded in its description.
- :mod:`.collection`: :class:`MilvusCollection`, coalescing, retrying I/O on one collection,
  shared with the LlamaIndex drop-in.
- :mod:`._wire`: write requests built column by column.
- :mod:`.consistency`, :mod:`.retry`, :mod:`.lite`, :mod:`.values`: read consistency,
  retry policy and error text, Milvus Lite's quirks, values for expressions and VARCHARs.
"""

from .base import CollectionInfo, DocState, DocumentInfo, Fusion, Row, Store
from .collection import MilvusCollection
from .lite import is_lite
from .milvus import MilvusStore
from .values import MAX_VARCHAR, quote, varchar

__all__ = [
    "MAX_VARCHAR",
    "CollectionInfo",
    "DocState",
    "DocumentInfo",
    "Fusion",
    "MilvusCollection",
    "MilvusStore",
    "Row",
    "Store",
    "is_lite",
    "quote",
    "varchar",
]
