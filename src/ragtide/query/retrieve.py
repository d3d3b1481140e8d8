"""Retrieval: dense, full-text (BM25) or hybrid search, then optional reranking.

Hybrid is the default wherever the collection has a full-text index: each leg fetches
``Fusion.candidates`` hits and ragtide fuses their scores (see
:class:`~ragtide.store.Fusion` for how, and docs/benchmarks.md for the values chosen), then the fused
best 20 (the passages of the documents the question names ranked by a second search within
them, without their names: :func:`joined`) gain a little for holding the question's
phrases (:class:`PhraseBoost`) and for lying in a document the question names
(:func:`named_documents_first`), and a passage of
the best's documents holding an uncommon word of the question that they lack takes the
last place (:func:`covering`). A collection without the index is searched dense only, and
the result says so.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..documents import Source
from ..embedding import Embedder
from ..errors import ConfigError
from ..filters import narrowed
from ..store import CollectionInfo, Fusion, Store
from ..text import content_words, terms
from ..vocabulary import MODES, Mode, check
from .mentions import held, mentioned, names_document, naming_words, uncommon_words, without_names
from .rerank import Reranker


@dataclass(frozen=True)
class Retrieval:
    """What a retrieval found, and how."""

    sources: list[Source]
    mode: Mode  # the mode used
    note: str = ""  # why the mode used is not the one asked for, or how to get hybrid
    reranked_by: str = ""  # the cross-encoder that reordered the sources, if one did
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)  # the question's, if searched by meaning


class PhraseBoost:
    """A hybrid search's last step: the fused best ``pool`` chunks gain up to ``weight`` for
    holding the question's phrases.

    A phrase is two content words next to each other (stems, stop words left out: "Monthly
    Active Platform Consumers" gives three). A chunk gains ``weight`` times the share of the
    question's phrases it holds, each phrase weighted by how rare it is among the pool, so a
    phrase every candidate holds counts for nothing. Neither leg sees word order: BM25 scores
    "platform" and "consumers" anywhere in a chunk alike, and a small embedding model blurs a
    10-K's exact terms, so the table row named by the question's own words ranked below
    passages on neighbouring topics. Chosen on the dev sets (docs/benchmarks.md, "Retrieval and answer
    quality"); 0 turns it off.

    Reading a chunk's phrases costs ~0.1 ms, in the event loop, so they are kept for the
    ``remember`` chunks read last, by chunk id (ids are content hashes: a chunk's text
    never changes under its id).
    """

    def __init__(self, weight: float = 0.3, pool: int = 20, *, remember: int = 2048) -> None:
        self.weight = weight
        self.pool = pool
        self._remember = remember
        self._phrases: OrderedDict[str, frozenset[int]] = OrderedDict()

    def rescore(
        self, question: str, texts: Sequence[str], scores: Sequence[float], ids: Sequence[str] | None = None
    ) -> list[float]:
        """``scores`` of the chunks ``texts`` (best first), the first ``pool`` with their gain;
        ``ids``, if given, are the chunks' ids, to remember their phrases by."""
        wanted = _phrases(question)
        if not self.weight or not wanted:
            return list(scores)
        n = min(len(texts), self.pool)
        held = [self._held(texts[i], ids[i] if ids else None) for i in range(n)]
        rarity = {pair: math.log((n + 1) / (1 + sum(pair in h for h in held))) for pair in wanted}
        total = sum(rarity.values())
        if not total:
            return list(scores)
        gains = [self.weight * sum(rarity[pair] for pair in wanted & h) / total for h in held]
        return [score + gain for score, gain in zip(scores, gains)] + list(scores[n:])

    def apply(self, question: str, sources: list[Source], limit: int) -> list[Source]:
        """``sources`` (fused, best first) reordered by their boosted scores, best ``limit``."""
        scores = self.rescore(question, [s.text for s in sources], [s.score for s in sources], [s.id for s in sources])
        order = sorted(range(len(sources)), key=lambda i: -scores[i])[:limit]
        return [dataclasses.replace(sources[i], score=scores[i]) for i in order]

    def _held(self, text: str, key: str | None) -> frozenset[int]:
        if key is None:
            return _phrases(text)
        held = self._phrases.get(key)
        if held is None:
            held = self._phrases[key] = _phrases(text)
            if len(self._phrases) > self._remember:
                self._phrases.popitem(last=False)
        else:
            self._phrases.move_to_end(key)
        return held


def _phrases(text: str) -> frozenset[int]:
    # Hashes of the (stem, stem) pairs, kept smaller than the pairs; a collision between a
    # question's few phrases and a chunk's is as likely as a 64-bit hash's.
    words = content_words(text)
    return frozenset(map(hash, zip(words, words[1:])))


def named_documents_first(question: str, ranked: list[Source], weight: float) -> list[Source]:
    """``ranked`` reordered after each passage of a document the question names (a word of
    its file name: "tail" of tail.1.txt, "pip" of python3-pip-authentication.md) gains
    ``weight``.

    A file's name says what all of it is about, which few of its passages repeat: asked
    "How do I make tail keep printing lines as a file grows?", journalctl's "--no-tail"
    option outranked tail's own manual for "tail" and "lines". Only the words of the name
    count, not its numbers or extension.
    """
    if not weight:
        return ranked
    asked = naming_words(question)
    gains = [weight * names_document(asked, s.source) for s in ranked]
    if not any(gains):
        return ranked
    order = sorted(range(len(ranked)), key=lambda i: -(ranked[i].score + gains[i]))
    return [dataclasses.replace(ranked[i], score=ranked[i].score + gains[i]) for i in order]


def named_documents(question: str, ranked: Sequence[Source], most: int) -> list[str]:
    """The sources, best first, of the documents among ``ranked`` that ``question`` names
    (see :func:`named_documents_first`), at most ``most``."""
    asked = naming_words(question)
    return list(dict.fromkeys(s.source for s in ranked if names_document(asked, s.source)))[:most]


def joined(ranked: list[Source], within: list[Source]) -> list[Source]:
    """``ranked``, the passages of the documents a search ``within`` some of them found ranked
    as it ranks them, best first.

    Within a document its name says nothing: every passage of chown's manual is about chown,
    and its shortest ones (NAME, SYNOPSIS, SEE ALSO) held the name most densely, so they
    outranked the option asked about. A search's scores are shares of its legs' best, so the
    narrower search's are scaled, per document, to keep that document's best score in the
    wider one; a passage it did not find falls below those it found.
    """
    found = {s.source for s in within}
    out = [s for s in ranked if s.source not in found]
    for document in dict.fromkeys(s.source for s in within):
        mine = [s for s in within if s.source == document]
        best = max((s.score for s in ranked if s.source == document), default=0.0)
        scale = best / mine[0].score if mine[0].score > 0 else 0.0
        out += [dataclasses.replace(s, score=s.score * scale) for s in mine]
        lowest = mine[-1].score * scale
        searched = {s.id for s in mine}
        out += [
            dataclasses.replace(s, score=min(s.score, lowest))
            for s in ranked
            if s.source == document and s.id not in searched
        ]
    return sorted(out, key=lambda s: -s.score)


def covering(question: str, ranked: list[Source], k: int) -> list[Source]:
    """The best ``k`` of ``ranked``, except that when they lack an uncommon word of the
    question ("Which ssh option *selects* the private key file?") that a lower passage of
    one of their documents holds, the best such passage takes the last place.

    The passages found are about the right documents but not always the right part of them: a
    long manual's other options share the question's other words. Looking no further than
    their own documents keeps a question about something none of them covers ("Which dd option
    encrypts ...?") from pulling in another document that happens to use the word.
    """
    top = ranked[:k]
    words = uncommon_words(question)
    if not words or len(ranked) <= k:
        return top
    stems = held(top)
    missing = [w for w in words if not mentioned(w, stems)]
    documents = {s.source for s in top}
    for source in ranked[k:] if missing else ():
        if source.source in documents:
            its = terms(source.text)
            if any(mentioned(w, its) for w in missing):
                return top[:-1] + [source]
    return top


# Documents a question names that a search looks into (the best three the pool holds): "pip"
# names each of pip's guides.
NAMED_SEARCHED = 3


class Retriever:
    """Finds the passages that answer a question.

    Questions asked concurrently are embedded in one batch and searched in one Milvus
    request (both layers coalesce), then each caller gets its own hits.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        collection: CollectionInfo,
        *,
        fusion: Fusion = Fusion(),
        phrases: PhraseBoost | None = None,
        name_weight: float = 0.3,
        reranker: Reranker | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._collection = collection
        self._fusion = fusion
        self._phrases = phrases or PhraseBoost()  # each retriever its own: it remembers chunks
        self._name_weight = name_weight
        self._reranker = reranker

    def mode_for(self, asked: str | None) -> tuple[Mode, str]:
        """The mode to search with, and a note when it is not hybrid for want of an index."""
        if asked:
            asked = check("mode", asked, MODES)
        if self._collection.lexical:
            return asked or "hybrid", ""
        note = self._collection.note or "dense retrieval only: this collection has no full-text index"
        if asked and asked != "dense":
            raise ConfigError(f"mode {asked!r}: {note}")
        return "dense", note

    def scoped(self, tenant: str) -> Retriever:
        """This retriever searching only ``tenant``'s rows (see :meth:`MilvusStore.scoped`)."""
        view = copy.copy(self)
        view._store = self._store.scoped(tenant)
        return view

    async def retrieve(
        self,
        question: str,
        top_k: int,
        *,
        mode: str | None = None,
        filter: str = "",
        consistency: str | None = None,
        sentences: bool = False,
    ) -> Retrieval:
        """The passages for ``question`` (``sentences``: with their sentences' vectors, for an answer)."""
        mode, note = self.mode_for(mode)
        wanted = self._reranker.candidates(top_k) if self._reranker else top_k
        boost = mode == "hybrid"  # the fused pool is rescored
        vector = None if mode == "lexical" else await self._embedder.embed_query(question)
        sources = await self._store.search(
            vector,
            max(wanted, self._phrases.pool) if boost else wanted,
            text=question,
            mode=mode,
            filter=filter,
            consistency=consistency,
            fusion=self._fusion,
            sentences=sentences,
        )
        if boost and self._name_weight:
            sources = await self._within_named(question, sources, vector, filter, consistency, sentences)
        if boost:
            ranked = self._phrases.apply(question, sources, len(sources))
            sources = covering(question, named_documents_first(question, ranked, self._name_weight), wanted)
        if self._reranker is None:
            return Retrieval(sources, mode, note, vector=vector)
        reranked = await self._reranker.rerank(question, sources, top_k)
        return Retrieval(reranked, mode, note, self._reranker.name, vector=vector)

    async def _within_named(
        self,
        question: str,
        pool: list[Source],
        vector: np.ndarray | None,
        filter: str,
        consistency: str | None,
        sentences: bool,
    ) -> list[Source]:
        """``pool``, the documents in it the question names ranked by a second search within
        them, without their names (:func:`joined`).

        A manual split into chunks is named as a whole, but its chunks are ranked against every
        other document's: asked "How do I make comm print a summary of counts?", ps's manual,
        which names its "comm" column dozens of times, filled the pool, and comm's "--total:
        output a summary" was not among the 20. And among its own chunks the name ranks the
        ones holding it most densely first, which say least (:func:`joined`).
        """
        named = named_documents(question, pool, NAMED_SEARCHED)
        if not named:
            return pool
        within = await self._store.search(
            vector,
            self._phrases.pool,
            text=without_names(question, named),
            mode="hybrid",
            filter=narrowed(filter, "source", named),
            consistency=consistency,
            fusion=self._fusion,
            sentences=sentences,
        )
        return joined(pool, within)
