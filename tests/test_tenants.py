"""Tenants and roles: one collection, many teams, each key seeing only its own documents.

The cross-tenant matrix runs on Milvus Lite and the server: for every route, a key of tenant
B never sees, finds (filters included), reads the jobs of, overwrites or deletes tenant A's
documents; read keys cannot write; a revoked key is refused at once; an admin sees all.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import httpx
import pytest

pytest.importorskip("fastapi")

from conftest import drop, new_collection  # noqa: E402
from ragtide import RAG, ConfigError  # noqa: E402
from ragtide.cli import main as cli  # noqa: E402
from ragtide.server import ServerConfig  # noqa: E402
from ragtide.server import keys as keyring  # noqa: E402
from ragtide.settings import Settings  # noqa: E402
from server_fixture import running, wait_for_job  # noqa: E402

A_TEXT = "The alpha vault code is 4417. Alpha keeps its vault in the harbour office."
B_TEXT = "The beta vault code is 9052. Beta keeps its vault in the lighthouse."
KEYS = ("alpha-key:alpha:write", "beta-key:beta:write", "alpha-reader:alpha:read", "root-key::admin", "plain-key")


def test_keys_carry_a_tenant_and_a_role():
    plain, member, reader, admin = map(keyring.parse, ["k1", "k2:legal", "k3:legal:read", "k4::admin"])
    assert (plain.tenant, plain.role) == (None, "admin")  # a key without a tenant works as before tenants
    assert (member.tenant, member.role, member.sees) == ("legal", "write", "legal")
    assert reader.may("read") and not reader.may("write")
    assert admin.sees is None and admin.may("admin")
    assert plain.digest != "k1" and len(plain.id) == 12  # the key itself is never kept
    with pytest.raises(ConfigError, match="role: 'owner' is not one of read, write, admin"):
        keyring.parse("k:legal:owner")
    with pytest.raises(ConfigError, match="tenant 'le gal'"):
        keyring.parse("k:le gal:read")


def test_the_keys_file_holds_digests_and_a_revoked_key_is_refused_at_once(tmp_path, capsys):
    path = tmp_path / "keys.json"
    assert cli(["keys", "add", "--file", str(path), "--tenant", "legal", "--role", "read"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("rt_") and secret not in path.read_text()
    ring = keyring.KeyRing(file=path)
    key = ring.match(secret)
    assert key is not None and (key.tenant, key.role) == ("legal", "read")
    assert cli(["keys", "list", "--file", str(path)]) == 0
    assert key.id in capsys.readouterr().out
    assert cli(["keys", "revoke", "--file", str(path), key.id]) == 0
    assert ring.match(secret) is None  # the file changed: read again at the next request
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_tenant_engine_sees_only_its_documents_and_two_copies_are_two(backend, embedder, tmp_path):
    name = new_collection()
    shared = tmp_path / "shared.txt"
    try:
        with RAG(uri=backend, collection=name, embedder=embedder) as rag:
            alpha, beta = rag.for_tenant("alpha"), rag.for_tenant("beta")
            shared.write_text(A_TEXT)
            assert alpha.ingest([shared]).added == 1
            shared.write_text(B_TEXT)
            assert beta.ingest([shared]).added == 1  # the same path: beta's own document, alpha's untouched
            assert len(rag.catalog()) == 2 and len(alpha.catalog()) == len(beta.catalog()) == 1
            assert alpha.chunks() == beta.chunks() == 1 and rag.chunks() == 2  # counted per tenant
            assert {s.text for s in alpha.retrieve("vault code", top_k=5)} == {A_TEXT}
            assert {s.text for s in beta.retrieve("vault code", top_k=5)} == {B_TEXT}
            (alpha_id,) = alpha.documents()
            assert beta.delete(alpha_id) == 0 and alpha.documents()  # another tenant's id deletes nothing
            assert beta.delete(str(shared)) == 1 and alpha.documents() and not beta.documents()
            with pytest.raises(ConfigError, match="tenant"):
                beta.retrieve("vault", filter='tenant == "alpha"')  # the filter language cannot name it
            with rag.for_tenant("alpha") as view:
                assert view.tenant == "alpha"
            assert alpha.documents()  # closing a view leaves the engine open
    finally:
        drop(backend, name)


@pytest.fixture
def tenants_service(backend, embedder, tmp_path):
    name = new_collection()
    file = tmp_path / "keys.json"
    secret, _ = keyring.add(file, "gamma", "write")
    config = ServerConfig(
        api_keys=KEYS,
        api_keys_file=file,
        upload_dir=tmp_path / "uploads",
        settings=Settings.load(uri=backend, collection=name),
    )
    rag = RAG(settings=config.settings, embedder=embedder)
    try:
        with running(config, rag) as url:
            clients = {
                who: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
                for who, key in [
                    ("alpha", "alpha-key"),
                    ("beta", "beta-key"),
                    ("reader", "alpha-reader"),
                    ("admin", "root-key"),
                    ("gamma", secret),
                ]
            }
            yield clients, file, config.upload_dir
    finally:
        rag.close()
        drop(backend, name)


def _upload(client: httpx.Client, name: str, text: str) -> dict:
    reply = client.post("/v1/documents", files=[("files", (name, text.encode()))])
    assert reply.status_code == 202, reply.text
    job = wait_for_job(client, reply.json()["job"]["id"])
    assert job["status"] == "done", job
    return job


def test_every_route_keeps_tenants_apart(tenants_service):
    clients, file, uploads = tenants_service
    alpha, beta, reader, admin = (clients[w] for w in ("alpha", "beta", "reader", "admin"))
    job_a = _upload(alpha, "vault.txt", A_TEXT)
    _upload(beta, "vault.txt", B_TEXT)  # the same name: beta's own document

    # Listing: each tenant its own; the admin both; names as uploaded, no tenant folder shown.
    docs_a, docs_b = alpha.get("/v1/documents").json()["documents"], beta.get("/v1/documents").json()["documents"]
    assert [d["source"] for d in docs_a] == ["vault.txt"] == [d["source"] for d in docs_b]
    assert docs_a[0]["id"] != docs_b[0]["id"]
    assert sorted(d["source"] for d in admin.get("/v1/documents").json()["documents"]) == [
        "alpha/vault.txt",
        "beta/vault.txt",
    ]

    # Questions, filters, the OpenAI endpoint: beta never gets alpha's text.
    for body in (
        {"question": "What is the alpha vault code?"},
        {"question": "vault code", "filter": 'metadata["tenant"] == "alpha"'},
        {"question": "vault code", "mode": "dense", "top_k": 20},
    ):
        reply = beta.post("/v1/query", json=body)
        assert reply.status_code == 200 and "4417" not in reply.text, reply.text
    assert beta.post("/v1/query", json={"question": "code", "filter": 'tenant == "alpha"'}).status_code == 400
    chat = beta.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "alpha vault code?"}]})
    assert chat.status_code == 200 and "4417" not in chat.text
    assert "4417" in alpha.post("/v1/query", json={"question": "What is the alpha vault code?"}).text

    # Jobs: another tenant's is not there.
    assert beta.get(f"/v1/jobs/{job_a['id']}").status_code == 404
    assert beta.delete(f"/v1/jobs/{job_a['id']}").status_code == 404
    assert alpha.get(f"/v1/jobs/{job_a['id']}").status_code == 200 and admin.get(f"/v1/jobs/{job_a['id']}").is_success

    # Deleting: beta cannot delete alpha's document, even by its id.
    assert beta.delete(f"/v1/documents/{docs_a[0]['id']}").status_code == 404
    assert [d["id"] for d in alpha.get("/v1/documents").json()["documents"]] == [docs_a[0]["id"]]

    # Roles: a read key asks and lists, nothing more; collections are the admin's.
    assert reader.post("/v1/query", json={"question": "vault code"}).status_code == 200
    assert "4417" in reader.post("/v1/query", json={"question": "What is the alpha vault code?"}).text
    assert reader.post("/v1/documents", files=[("files", ("x.txt", b"x"))]).status_code == 403
    assert reader.delete(f"/v1/documents/{docs_a[0]['id']}").status_code == 403
    assert alpha.get("/v1/collections").status_code == 403 and admin.get("/v1/collections").status_code == 200

    # The audit log: who wrote and deleted what.
    assert alpha.delete(f"/v1/documents/{docs_a[0]['id']}").status_code == 200
    lines = [json.loads(line) for line in (uploads / "audit.jsonl").read_text().splitlines()]
    assert [(line["tenant"], line["action"]) for line in lines] == [
        ("alpha", "upload"),
        ("beta", "upload"),
        ("alpha", "delete"),
    ]
    assert lines[-1]["documents"] == [docs_a[0]["id"]] and "alpha-key" not in json.dumps(lines)

    # A key from the keys file works, and is refused at once when revoked.
    gamma = clients["gamma"]
    assert gamma.get("/v1/documents").json()["documents"] == []
    (entry,) = keyring.read_file(file)
    keyring.revoke(file, entry.id)
    assert gamma.get("/v1/documents").status_code == 401


@contextmanager
def _lite_service(lite_dir, embedder, tmp_path, **limits):
    """A service on a new Lite collection with ``limits``; yields its URL."""
    settings = Settings.load(uri=str(lite_dir / "limits.db"), collection=new_collection())
    config = ServerConfig(upload_dir=tmp_path, settings=settings, **limits)
    with RAG(settings=settings, embedder=embedder) as rag, running(config, rag) as url:
        yield url


def test_a_tenant_past_its_quota_cannot_upload(lite_dir, embedder, tmp_path):
    keys = ("small-key:small:write", "other-key:other:write")
    with _lite_service(lite_dir, embedder, tmp_path, api_keys=keys, quota_chunks=1) as url:
        small = httpx.Client(base_url=url, headers={"Authorization": "Bearer small-key"}, timeout=300)
        other = httpx.Client(base_url=url, headers={"Authorization": "Bearer other-key"}, timeout=300)
        _upload(small, "one.txt", A_TEXT)
        refused = small.post("/v1/documents", files=[("files", ("two.txt", B_TEXT.encode()))])
        assert refused.status_code == 413 and "quota of 1 chunks is used" in refused.text
        _upload(other, "one.txt", B_TEXT)  # another tenant's quota is its own


def test_each_key_has_a_request_rate(lite_dir, embedder, tmp_path):
    with _lite_service(lite_dir, embedder, tmp_path, api_keys=("fast-key",), key_rate=0.5, key_burst=2) as url:
        headers = {"Authorization": "Bearer fast-key"}
        codes = [httpx.get(f"{url}/v1/models", headers=headers).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        refused = httpx.get(f"{url}/v1/models", headers=headers)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert httpx.get(f"{url}/healthz").status_code == 200  # only /v1 is counted


def test_a_collection_made_before_tenants_keeps_working_and_says_why_tenants_cannot_use_it(
    lite_dir, embedder, tmp_path, monkeypatch
):
    import dataclasses

    from ragtide.store import schema

    @dataclasses.dataclass(frozen=True)
    class BeforeTenants(schema.Layout):  # as ragtide made collections before tenants: no tenant field
        tenants: bool = False

    monkeypatch.setattr(schema, "Layout", BeforeTenants)
    note = tmp_path / "note.txt"
    note.write_text(A_TEXT)
    with RAG(uri=str(lite_dir / "old.db"), collection=new_collection(), embedder=embedder) as rag:
        assert rag.ingest([note]).added == 1 and rag.retrieve("vault code", top_k=1)
        with pytest.raises(ConfigError, match="made before tenants .* ingest into a new --collection"):
            rag.for_tenant("alpha").retrieve("vault code")
