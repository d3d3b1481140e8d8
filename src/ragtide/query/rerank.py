"""Optional reranking with a cross-encoder: the question and each candidate passage read together.

Any sentence-transformers ``CrossEncoder`` by name or local path. It rescores the top
``pool`` fused candidates and keeps the best ``top_k``; off unless a model is given
(``--rerank MODEL``, ``RAGTIDE_RERANK_MODEL``). Like the embedder it runs in one worker
thread, and reranks asked for together share one model call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..batching import Batcher
from ..documents import Source
from ..errors import EmbeddingError


class Reranker:
    """A cross-encoder that reorders retrieved passages by relevance to the question.

    >>> reranker = Reranker("cross-encoder/ms-marco-MiniLM-L6-v2")   # or a local path
    >>> best = await reranker.rerank("who founded Uber?", sources, top_k=5)
    """

    def __init__(self, model: str, *, pool: int = 30, batch_size: int = 32, device: str = "") -> None:
        try:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(model, device=device or None)
        except Exception as e:
            raise EmbeddingError(
                f"cannot load reranking model {model!r}: {e}. Give a local path, or a model name "
                "present in the Hugging Face cache (HF_HOME)."
            ) from None
        self.name = model
        self.pool = pool
        self._batch_size = batch_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragtide-rerank")
        self._batchers: dict[asyncio.AbstractEventLoop, Batcher[tuple[str, str], float]] = {}

    def candidates(self, top_k: int) -> int:
        """How many fused candidates to fetch for ``top_k`` reranked results."""
        return max(top_k, self.pool)

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Relevance of each (question, passage) pair, synchronously."""
        try:
            scores = self._model.predict(
                list(pairs), batch_size=self._batch_size, show_progress_bar=False, convert_to_numpy=True
            )
        except Exception as e:
            raise EmbeddingError(f"reranking model {self.name!r} failed: {e}") from e
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs), -1)[:, -1]

    async def rerank(self, question: str, sources: list[Source], top_k: int) -> list[Source]:
        """``sources`` reordered by the cross-encoder, best ``top_k``, each scored by it."""
        if not sources:
            return []
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = Batcher(self._score_many, max_items=512, max_delay=0.002, max_in_flight=1)
        scores = await asyncio.gather(*(batcher.submit((question, s.text)) for s in sources))
        order = sorted(range(len(sources)), key=lambda i: -scores[i])[:top_k]
        return [dataclasses.replace(sources[i], score=float(scores[i])) for i in order]

    async def _score_many(self, pairs: list[tuple[str, str]]) -> list[float]:
        loop = asyncio.get_running_loop()
        return [float(x) for x in await loop.run_in_executor(self._executor, self.score, pairs)]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
