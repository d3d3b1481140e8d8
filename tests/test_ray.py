"""Ingest on a Ray cluster (`ragtide ingest --ray`): the rows a local ingest stores, re-runs
that store nothing, and faults (a worker, then the driver, killed mid-run) that leave
exactly the rows of a clean ingest. A two-node Ray cluster on this machine (two
`ray start`) and the real Milvus server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import RAGTIDE_CLI, SERVER_URI, drop, new_collection, run_cli
from ragtide.query.extract import unit_texts
from ragtide.sentences import SentenceVectors

pytestmark = [pytest.mark.server, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
# A cluster on loopback for one test run: no token to hand around.
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_BACKEND_LOG_LEVEL": "error"}
# Small batches: writes spread over the run, so a fault lands between them.
ACTORS = ["--ray-actors", "2", "--ray-actor-cpus", "1", "--ray-batch", "16"]


@pytest.fixture(scope="module")
def cluster():
    """The address of a head node and a second node, each of 2 CPUs, on this machine."""
    if not SERVER_URI:
        pytest.skip("no Milvus server: run `make test`, or set RAGTIDE_TEST_SERVER_URI")
    if not RAY.exists():
        pytest.skip("Ray is not installed (pip install 'ragtide[ray]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus=2", "--disable-usage-stats"]
    start = [str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false", *common]
    subprocess.run(start, env=RAY_ENV, check=True, capture_output=True, timeout=120)
    try:
        join = [str(RAY), "start", f"--address=127.0.0.1:{port}", *common]
        subprocess.run(join, env=RAY_ENV, check=True, capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=RAY_ENV, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five pages of ragtide's documentation (about 60 chunks), and one file that is not what
    its name says."""
    folder = tmp_path_factory.mktemp("ray-corpus")
    for name in ("configuration.md", "failures.md", "formats.md", "quickstart.md", "service.md"):
        shutil.copy(ROOT / "docs" / name, folder / name)
    (folder / "broken.pdf").write_text("not a PDF at all")
    return folder


@pytest.fixture(scope="module")
def clean(folder, embedder):
    """The rows of a clean single-process ingest of ``folder`` (the reference)."""
    from ragtide import RAG

    name = new_collection()
    with RAG(uri=SERVER_URI, collection=name, embedder=embedder) as rag:
        assert list(rag.ingest([folder]).failed) == [str(folder / "broken.pdf")]
    yield rows(name)
    drop(SERVER_URI, name)


def rows(collection: str) -> list[dict]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=SERVER_URI)
    found: list[dict] = []
    pages = client.query_iterator(
        collection, filter="chunk_index >= 0", output_fields=["*"], batch_size=1000, consistency_level="Strong"
    )
    while page := pages.next():
        found.extend(page)
    client.close()
    return found


def count(collection: str) -> int:
    from pymilvus import MilvusClient, MilvusException

    client = MilvusClient(uri=SERVER_URI)
    try:
        got = client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(got[0]["count(*)"])
    except MilvusException:  # not made, or not loaded, yet
        return 0
    finally:
        client.close()


def assert_same_rows(expected: list[dict], got: list[dict]) -> None:
    """0 missing, 0 extra, 0 duplicates; every field alike but the time of ingest; the same vectors
    (to the embedding's precision)."""
    want, have = {r["id"]: r for r in expected}, {r["id"]: r for r in got}
    assert len(have) == len(got), "duplicate rows"
    assert set(have) == set(want), (len(set(want) - set(have)), "missing", len(set(have) - set(want)), "extra")
    for key, row in want.items():
        a, b = dict(row), dict(have[key])
        for r in (a, b):
            r["metadata"] = {k: v for k, v in r["metadata"].items() if k != "ingested"}
            r.pop("sparse", None)
        va, vb = np.asarray(a.pop("vector")), np.asarray(b.pop("vector"))
        sa, sb = SentenceVectors(a.pop("sentences")), SentenceVectors(b.pop("sentences"))
        assert a == b
        # The same text's vector: identical in fp32, but in bf16 (CPUs with AMX) a chunk's
        # vector varies with the batch it was embedded in (its padding), by up to ~1e-3 a dimension.
        assert float(va @ vb) / float(np.linalg.norm(va) * np.linalg.norm(vb)) > 0.9999
        units = unit_texts(a["text"])
        assert len(sa) == len(sb) == len(units)
        for unit in units:  # the same, to that and to int8's precision
            assert float(sa.get(unit) @ sb.get(unit)) > 0.995


def ray_ingest(cluster: str, collection: str, *paths: str | Path) -> list[str]:
    where = ["--uri", SERVER_URI, "--collection", collection]
    return [*RAGTIDE_CLI, "ingest", *map(str, paths), "--ray", cluster, *ACTORS, *where]


def run(cluster: str, collection: str, *paths: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(ray_ingest(cluster, collection, *paths), env=RAY_ENV, capture_output=True, text=True)


def start(cluster: str, collection: str, *paths: str | Path) -> subprocess.Popen:
    command = ray_ingest(cluster, collection, *paths)
    return subprocess.Popen(command, env=RAY_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(collection: str, process: subprocess.Popen, total: int) -> int:
    """Once some but not all of the run's rows are in Milvus: how many."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if 0 < (n := count(collection)) < total:
            return n
        time.sleep(0.2)
    pytest.fail(f"the run ended (or stalled) before it was halfway: {process.poll()=}")


def test_a_ray_ingest_with_a_worker_killed_mid_run_stores_the_rows_of_a_local_one_and_a_rerun_stores_nothing(
    cluster, folder, clean
):
    name = new_collection()
    try:
        ingest = start(cluster, name, folder)
        wait_for_rows(name, ingest, len(clean))
        actors = subprocess.run(
            ["pgrep", "-f", r"ray::MapWorker\(MapBatches\(_Embed\)\)"], capture_output=True, text=True
        )
        assert actors.stdout.split(), "no embedding actor to kill"
        os.kill(int(actors.stdout.split()[0]), signal.SIGKILL)
        out, err = ingest.communicate(timeout=300)
        assert ingest.returncode == 1, err  # one file failed, named with its reason
        assert "broken.pdf: not a PDF" in err
        assert "5 added, 0 updated, 0 unchanged, 0 deleted, 1 failed" in out, err
        assert_same_rows(clean, rows(name))

        # Again, with a file given by URI (object storage: s3:// and gs:// go through pyarrow as file:// does).
        uri = (folder / "quickstart.md").as_uri()
        again = run(cluster, name, folder, uri)
        assert "1 added, 0 updated, 5 unchanged, 0 deleted, 1 failed" in again.stdout, again.stderr
        stored = rows(name)
        assert_same_rows(clean, [r for r in stored if r["source"] != uri])
        local = [r for r in clean if r["source"] == str(folder / "quickstart.md")]
        remote = [r for r in stored if r["source"] == uri]
        assert sorted((r["chunk_index"], r["text"]) for r in remote) == sorted(
            (r["chunk_index"], r["text"]) for r in local
        )
    finally:
        drop(SERVER_URI, name)


def test_a_driver_killed_mid_run_then_run_again_leaves_exactly_the_rows_of_a_clean_ingest(cluster, folder, clean):
    name = new_collection()
    try:
        ingest = start(cluster, name, folder)
        wait_for_rows(name, ingest, len(clean))
        ingest.kill()
        ingest.communicate()
        again = run(cluster, name, folder)
        assert again.returncode == 1, again.stderr
        assert_same_rows(clean, rows(name))
    finally:
        drop(SERVER_URI, name)


def test_milvus_lite_is_refused_with_the_reason(tmp_path):
    db = tmp_path / "ragtide.db"
    done = run_cli("ingest", str(tmp_path), "--ray", "local", "--uri", str(db))
    assert done.returncode == 2
    assert "Milvus Lite" in done.stderr and "server" in done.stderr
    assert not db.exists()
