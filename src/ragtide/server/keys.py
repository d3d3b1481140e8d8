"""API keys: who is calling, which tenant's documents they see, and what they may do.

A key is given as ``key``, ``key:tenant`` or ``key:tenant:role`` (``RAGTIDE_API_KEYS``,
comma-separated), or kept in a keys file (``RAGTIDE_API_KEYS_FILE``) that holds only the
keys' SHA-256 digests, written by ``ragtide keys add|list|revoke``. The service reads the
file again when it changes, so a revoked key is refused at its next request.

- A key without a tenant works as before tenants: one collection, everything in it.
- A key with a tenant sees, finds, lists and deletes only that tenant's documents, and its
  uploads are that tenant's (:meth:`ragtide.RAG.for_tenant`).
- Roles: ``read`` asks and lists; ``write`` also uploads and deletes; ``admin`` also sees
  every tenant's documents and jobs and the collections (:data:`ragtide.vocabulary.ROLES`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError
from ..vocabulary import ROLES, Role, check, check_tenant

DEFAULT_ROLE: Role = "write"  # of a key given with a tenant and no role: a team member


@dataclass(frozen=True)
class Key:
    """A key as the service knows it: never the key itself, only its digest."""

    id: str  # a short public name, for listings and the audit log: the digest's first 12 hex digits
    digest: str  # SHA-256 of the key, hex
    tenant: str | None = None  # None: no tenant (the whole collection)
    role: Role = "admin"
    created: str = ""
    revoked: bool = False

    def may(self, role: Role) -> bool:
        """Whether this key's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def sees(self) -> str | None:
        """Whose documents it reads: its tenant's, or every tenant's (None) for an admin or a key without one."""
        return None if self.role == "admin" else self.tenant


# What a service without keys (on this machine only) acts as.
LOCAL = Key("local", "", None, "admin")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse(spec: str) -> Key:
    """A key from ``key[:tenant[:role]]`` (``RAGTIDE_API_KEYS``)."""
    key, _, rest = spec.strip().partition(":")
    tenant, _, role = rest.partition(":")
    if not key:
        raise ConfigError("RAGTIDE_API_KEYS: an empty key")
    if tenant:
        check_tenant(tenant)
    hashed = digest(key)
    chosen: Role = check("role", role, ROLES) if role else (DEFAULT_ROLE if tenant else "admin")
    return Key(hashed[:12], hashed, tenant or None, chosen)


class KeyRing:
    """The keys the service accepts: those given in the environment and those of a keys file."""

    def __init__(self, given: tuple[str, ...] = (), file: Path | None = None) -> None:
        self._given = [parse(spec) for spec in given]
        self._file = file
        self._from_file: list[Key] = []
        self._seen: tuple[float, int] | None = None
        self._reload()

    def __bool__(self) -> bool:
        """Whether the service asks for keys at all."""
        return bool(self._given) or self._file is not None

    def match(self, presented: str) -> Key | None:
        """The key ``presented`` is, if it is one and not revoked."""
        self._reload()
        given = digest(presented).encode()
        found = None
        # Compare with every key, so the time taken does not say which one nearly matched.
        for key in (*self._given, *self._from_file):
            if hmac.compare_digest(given, key.digest.encode()) and not key.revoked:
                found = key
        return found

    def _reload(self) -> None:
        if self._file is None:
            return
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            self._from_file, self._seen = [], None
            return
        if self._seen == (stat.st_mtime, stat.st_size):
            return
        self._from_file = read_file(self._file)
        self._seen = (stat.st_mtime, stat.st_size)


def read_file(path: Path) -> list[Key]:
    """The keys of a keys file (a missing file holds none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Key(**entry) for entry in data["keys"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a ragtide keys file ({type(e).__name__}: {e})") from None


def add(path: Path, tenant: str | None, role: Role) -> tuple[str, Key]:
    """A new key for ``tenant`` with ``role``, its digest saved to ``path``: (the key, shown once; its record)."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: one of {', '.join(ROLES)}")
    if tenant:
        check_tenant(tenant)
    secret = "rt_" + secrets.token_urlsafe(32)
    hashed = digest(secret)
    key = Key(hashed[:12], hashed, tenant or None, role, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    _write(path, [*read_file(path), key])
    return secret, key


def revoke(path: Path, key_id: str) -> Key:
    """Mark the key ``key_id`` revoked in ``path``; the service refuses it from its next request."""
    keys = read_file(path)
    found = [k for k in keys if k.id == key_id]
    if not found:
        raise ConfigError(f"no key {key_id!r} in {path} (ragtide keys list shows them)")
    _write(path, [Key(**{**asdict(k), "revoked": True}) if k.id == key_id else k for k in keys])
    return found[0]


def _write(path: Path, keys: list[Key]) -> None:
    # Atomic, and readable by its owner only: the digests are not the keys, but need no audience.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"keys": [asdict(k) for k in keys]}, out, indent=1)
    os.replace(tmp, path)
