"""The vectors of a passage's answer units, made once at ingest and stored in its row.

An offline answer weighs the meaning of a few of the retrieved passages' sentences, list
items and option entries against the question (:mod:`ragtide.query.extract`). That
depends on the passage alone, so ingest embeds each chunk's units beside the chunk and
stores them with it; an answer then embeds nothing but its question, which retrieval
embedded already.

They are kept in one string field: each vector as int8 with its own scale (its cosine
with a question within about 1e-3 of float32's), under an 8-byte digest of the text it
encodes. A unit the answer step cuts otherwise than ingest did (a later version's rules,
a row written by another tool) is not found, and is embedded when it is weighed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

Units = Callable[[str], list[str]]
"""A passage's units whose meaning an answer may weigh, as the answer embeds them
(:func:`ragtide.query.extract.unit_texts`)."""

_KEY = 8  # bytes of a unit's digest: unique among the units of one passage
_HEADER = struct.Struct("<HH")  # units, dimensions


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_KEY).digest()


@dataclass(frozen=True)
class SentenceVectors:
    """A passage's unit vectors, as stored (``encoded``: ASCII, empty when there are none)."""

    encoded: str = ""

    @classmethod
    def of(cls, texts: Sequence[str], vectors: np.ndarray, max_chars: int) -> SentenceVectors:
        """The vectors of ``texts`` (unit length), as many as ``max_chars`` hold, first ones first."""
        if not len(texts):
            return cls()
        dim = vectors.shape[1]
        fit = ((max_chars // 4) * 3 - _HEADER.size) // (_KEY + 4 + dim)
        n = min(len(texts), fit, 0xFFFF)
        if n <= 0:
            return cls()
        vectors = np.asarray(vectors[:n], dtype=np.float32)
        scales = np.abs(vectors).max(axis=1) / 127.0
        scales[scales == 0] = 1.0
        codes = np.rint(vectors / scales[:, None]).astype(np.int8)
        keys = b"".join(_key(text) for text in texts[:n])
        data = _HEADER.pack(n, dim) + keys + scales.astype("<f4").tobytes() + codes.tobytes()
        return cls(base64.b64encode(data).decode("ascii"))

    @cached_property
    def _vectors(self) -> dict[bytes, np.ndarray]:
        if not self.encoded:
            return {}
        try:
            data = base64.b64decode(self.encoded, validate=True)
            n, dim = _HEADER.unpack_from(data)
            keys_end = _HEADER.size + n * _KEY
            scales = np.frombuffer(data, "<f4", n, keys_end)
            codes = np.frombuffer(data, np.int8, n * dim, keys_end + 4 * n).reshape(n, dim)
        except (binascii.Error, struct.error, ValueError):
            return {}  # not ours, or cut short: every unit is embedded when weighed
        vectors = codes.astype(np.float32) * scales[:, None]
        keys = data[_HEADER.size : keys_end]
        return {keys[i * _KEY : (i + 1) * _KEY]: vectors[i] for i in range(n)}

    def get(self, text: str) -> np.ndarray | None:
        """The stored vector of the unit ``text``, if there is one."""
        return self._vectors.get(_key(text)) if self.encoded else None

    def __len__(self) -> int:
        return len(self._vectors)


def units_of(texts: Sequence[str], units: Units | None) -> list[list[str]]:
    """Each text's units: none without ``units``, nor for a text they fail on (answers then
    embed its units, as for a collection made before): an odd passage never stops an ingest."""
    out: list[list[str]] = []
    for text in texts:
        try:
            out.append(units(text) if units else [])
        except Exception:  # a rule's bug on text nobody foresaw: the chunk is still stored
            out.append([])
    return out


@dataclass(frozen=True)
class Embedding:
    """Chunks and their answer units, embedded in one model call, each distinct text once
    (a sentence in two chunks' overlap, a line every page repeats)."""

    texts: Sequence[str]
    units: Sequence[Sequence[str]]

    @cached_property
    def _slots(self) -> dict[str, int]:
        every = [*self.texts, *(unit for found in self.units for unit in found)]
        return {text: k for k, text in enumerate(dict.fromkeys(every))}

    @property
    def distinct(self) -> list[str]:
        """What to embed."""
        return list(self._slots)

    def split(self, vectors: np.ndarray, max_chars: int) -> tuple[np.ndarray, list[SentenceVectors]]:
        """From the vectors of :attr:`distinct`: the chunks' vectors, and each chunk's units'."""
        slots = self._slots
        stored = [
            SentenceVectors.of(found, vectors[[slots[unit] for unit in found]], max_chars) for found in self.units
        ]
        return vectors[[slots[text] for text in self.texts]], stored
