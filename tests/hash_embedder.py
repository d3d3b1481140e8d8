"""A small deterministic embedder for the fast tier (`make test-fast`): no model, no export.

Its tokens are words and punctuation marks; a text's vector is the normalised sum of its
lowercased words hashed into 384 dimensions, so texts sharing words are close. Retrieval
on it is lexical in disguise: good enough to exercise every path, not to measure quality.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


class HashEmbedder:
    name = "test-hash-embedder"
    dim = 384
    max_tokens = 256
    quantize = "none"
    backend = "test"
    precision = "fp32"
    runs_on = "test fp32"
    busy_seconds = 0.0

    @property
    def space(self) -> dict[str, str]:
        return {"quantize": self.quantize, "backend": self.runs_on}

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in _TOKEN.finditer(text)] for text in texts]

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, slot % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dim)
        return out

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        await asyncio.sleep(0)
        return self.encode(texts, query=query)

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed([text], query=True))[0]

    async def embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        return await self.embed(texts)

    def close(self) -> None:
        pass
