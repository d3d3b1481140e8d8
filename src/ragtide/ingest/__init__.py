"""Getting documents in: load -> chunk -> embed -> write, and taking them out again.

- :mod:`.loaders`: files into :class:`~ragtide.documents.Document` objects, by type (:mod:`.formats`).
- :mod:`.chunking`: documents into chunks measured in the model's tokens.
- :mod:`.pipeline`: the concurrent stages of one ingest run.
- :mod:`.distributed`: the same stages on a Ray cluster (Ray Data).
- :mod:`.report`: its progress events and report.
- :mod:`.removal`: deleting documents and pruning those whose files are gone.
"""

from .chunking import Chunker
from .loaders import discover, load, readable, supported
from .pipeline import Input, Pipeline, ingest
from .removal import delete, prune
from .report import IngestReport, Outcome, Progress, ProgressCallback

__all__ = [
    "Chunker",
    "IngestReport",
    "Input",
    "Outcome",
    "Pipeline",
    "Progress",
    "ProgressCallback",
    "delete",
    "discover",
    "ingest",
    "load",
    "prune",
    "readable",
    "supported",
]
