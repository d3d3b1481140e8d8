"""The audit log: every write and delete, one JSON line each, in ``<upload dir>/audit.jsonl``.

A line says when, which key (its public id, never the key), its tenant and role, what it
did and to what: ``{"time": "2026-12-02T06:40:01Z", "key": "3f2a9c1b7d4e", "tenant":
"legal", "role": "write", "action": "delete", "documents": ["9b1e..."]}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .keys import Key


class Audit:
    """Appends to the audit log at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, key: Key, action: str, **what: Any) -> None:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "key": key.id,
            "tenant": key.tenant,
            "role": key.role,
            "action": action,
            **what,
        }
        # One short write per line, appended: lines of concurrent requests do not interleave.
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(line, ensure_ascii=False) + "\n")
