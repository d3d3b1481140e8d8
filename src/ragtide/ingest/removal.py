"""Removing documents: by path, key, id or folder, and pruning those whose files are gone."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..documents import doc_id
from ..store import Store

_DOC_ID = re.compile(r"[0-9a-f]{32}")


async def delete(store: Store, doc: str) -> int:
    """Delete a document by its path, its key or its id; a folder deletes every document
    under it. Returns how many documents had rows."""
    path = Path(doc).expanduser()
    ids = {doc_id(doc, store.tenant or ""), doc_id(str(path.resolve()), store.tenant or "")}
    if _DOC_ID.fullmatch(doc):
        ids.add(doc)
    if path.is_dir() or doc.endswith(os.sep):
        base = path.resolve()
        ids |= {d for d, src in (await store.documents()).items() if base in Path(src).parents}
    return await store.delete_docs(sorted(ids))


async def prune(store: Store, roots: Sequence[str | os.PathLike[str]], present: set[str]) -> int:
    """Delete the documents under ``roots`` whose files no longer exist (``present``: the
    files just found there)."""
    bases = [Path(r).resolve() for r in roots]
    gone = []
    for found, source in (await store.documents()).items():
        path = Path(source)
        if not path.is_absolute() or source in present or path.exists():
            continue
        if any(path == base or base in path.parents for base in bases):
            gone.append(found)
    return await store.delete_docs(gone)
