"""What a request may reach: its key's role decides what it may do, its tenant what it sees.

The front door (:mod:`.guard`) found the key; every route asks here before it works: for
the role it needs (403 otherwise), and for the engine scoped to the caller's tenant, so no
route can forget the scope (a tenant's engine finds, lists and deletes only its documents).
"""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException

from ..engine import RAG
from ..vocabulary import Role
from .keys import LOCAL, Key


def caller(request: Request, needs: Role = "read") -> Key:
    """The request's key, if its role includes ``needs``; else 403."""
    key: Key = getattr(request.state, "key", LOCAL)
    if not key.may(needs):
        raise HTTPException(403, f"this key's role is {key.role!r}; this needs {needs!r}")
    return key


def reader(request: Request, needs: Role = "read") -> RAG:
    """The engine as the caller sees the collection: its tenant's documents (every tenant's for an admin)."""
    return request.app.state.rag.for_tenant(caller(request, needs).sees)


def writer(request: Request) -> tuple[Key, RAG]:
    """The caller (a writer) and the engine that writes as its tenant."""
    key = caller(request, "write")
    return key, request.app.state.rag.for_tenant(key.tenant)
