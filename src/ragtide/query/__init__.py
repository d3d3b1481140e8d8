"""Getting answers out: retrieve passages, then answer from them.

- :mod:`.retrieve`: dense, full-text or hybrid search, the phrase step, reranking (:mod:`.rerank`).
- :mod:`.generate`: the answer step: the LLM (:mod:`.llm`, :mod:`.prompt`) or, offline,
  the extractive answer (:mod:`.extract`).
- :mod:`.answer`: the :class:`Answer` type; :mod:`.citations`: [n] citations and footnotes.
"""

from .answer import Answer
from .generate import answer
from .llm import LLM
from .rerank import Reranker
from .retrieve import PhraseBoost, Retrieval, Retriever

__all__ = ["LLM", "Answer", "PhraseBoost", "Reranker", "Retrieval", "Retriever", "answer"]
