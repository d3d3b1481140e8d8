"""Search requests as the collection batches them: what makes two searches one request,
and how a batch of questions becomes one Milvus search."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..vocabulary import Consistency


@dataclass(frozen=True)
class SearchKey:
    """Everything about a search but its question: searches with equal keys share a request."""

    limit: int
    filter: str
    consistency: Consistency
    output_fields: tuple[str, ...]
    anns_field: str
    params: str  # the index's search parameters, as JSON, so the key is hashable

    @classmethod
    def of(
        cls,
        limit: int,
        consistency: Consistency,
        search_params: dict[str, Any],
        *,
        filter: str = "",
        output_fields: Sequence[str] = (),
        anns_field: str = "",
    ) -> SearchKey:
        return cls(
            limit, filter, consistency, tuple(output_fields), anns_field, json.dumps(search_params, sort_keys=True)
        )

    def kwargs(self, timeout: float) -> dict[str, Any]:
        """``MilvusClient.search``'s keyword arguments for a search with this key."""
        return {
            "filter": self.filter,
            "limit": self.limit,
            "output_fields": list(self.output_fields),
            "search_params": json.loads(self.params),
            "anns_field": self.anns_field or None,
            "consistency_level": self.consistency,
            "timeout": timeout,
        }


def as_query(data: Any) -> str | np.ndarray:
    """A question as a search sends it: text for a full-text field, else a float32 vector."""
    return data if isinstance(data, str) else np.asarray(data, dtype=np.float32).reshape(-1)


def query_bytes(item: Any) -> int:
    if isinstance(item, tuple):
        return sum(query_bytes(part) for part in item)
    return len(item) if isinstance(item, str) else int(item.nbytes)


def distinct(items: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct queries among ``items``, and where each item's answer is among them.

    Callers asking the same thing at once (a dashboard refreshing, a benchmark repeating
    one query) cost Milvus one query, not one each.
    """
    seen: dict[Any, int] = {}
    unique: list[Any] = []
    slots = []
    for item in items:
        fingerprint = item if isinstance(item, str) else item.tobytes()
        slot = seen.get(fingerprint)
        if slot is None:
            slot = seen[fingerprint] = len(unique)
            unique.append(item)
        slots.append(slot)
    return unique, slots
