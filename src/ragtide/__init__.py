"""ragtide: an async RAG engine on Milvus.

Point it at documents, ask questions, get answers that cite their sources.

>>> from ragtide import RAG
>>> with RAG() as rag:                     # Milvus Lite in ./ragtide.db, local model
...     rag.ingest(["docs/"])
...     print(rag.query("How do I start?").text)
"""

from .documents import Chunk, Document, Page, Source
from .embedding import Embedder
from .engine import RAG, Conversation
from .errors import ConfigError, EmbeddingError, LLMError, LoaderError, RagtideError, StoreError
from .filters import Filter
from .ingest import Chunker, IngestReport, Progress, load
from .ingest.distributed import RayOptions
from .query import Answer
from .query.conversation import Turn
from .settings import Settings
from .store import CollectionInfo, MilvusStore, Store

__version__ = "0.1.0"

__all__ = [
    "RAG",
    "Conversation",
    "Turn",
    "Answer",
    "Source",
    "Document",
    "Page",
    "Chunk",
    "Chunker",
    "Embedder",
    "MilvusStore",
    "Store",
    "CollectionInfo",
    "IngestReport",
    "RayOptions",
    "Progress",
    "Settings",
    "Filter",
    "load",
    "RagtideError",
    "ConfigError",
    "LoaderError",
    "EmbeddingError",
    "StoreError",
    "LLMError",
]
