"""Schemathesis against the service's own OpenAPI schema, every endpoint, with and without
a key: no server error (5xx) and no response that breaks the schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

from conftest import ESSAY, drop, new_collection  # noqa: E402
from ragtide import RAG  # noqa: E402
from ragtide.server import ServerConfig  # noqa: E402
from ragtide.settings import Settings  # noqa: E402
from server_fixture import running, upload, wait_for_job  # noqa: E402

pytestmark = pytest.mark.model  # the real embedding model: not in the fast tier

KEY = "fuzz-key"
EXAMPLES = 12  # per operation and phase: the two runs stay near a minute


@pytest.fixture(scope="module")
def service(lite_dir, embedder, tmp_path_factory):
    import httpx

    uri, name = str(lite_dir / "fuzz.db"), new_collection()
    config = ServerConfig(
        api_keys=(KEY,),
        upload_dir=tmp_path_factory.mktemp("fuzz-uploads"),
        max_upload_mb=1.0,
        settings=Settings.load(uri=uri, collection=name),
    )
    rag = RAG(settings=config.settings, embedder=embedder)
    with running(config, rag) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300) as client:
            wait_for_job(client, upload(client, ESSAY).json()["job"]["id"])
        yield url
    rag.close()
    drop(uri, name)


def _schemathesis(
    url: str, report: Path, *headers: str, phases: str = "coverage,fuzzing"
) -> tuple[subprocess.CompletedProcess, dict]:
    # One worker: with two, hypothesis parsing lambdas' source in both threads at once hit
    # CPython 3.11.7's "AST constructor recursion depth mismatch" (fixed in 3.11.8), which
    # schemathesis reports as an error of its run.
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    command = [
        st,
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,"
        "content_type_conformance,response_schema_conformance,response_headers_conformance",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--generation-deterministic",
        "--no-shrink",
        "--request-timeout",
        "120",
        "--workers",
        "1",
        "--phases",
        phases,
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    for header in headers:
        command += ["--header", header]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return out, _cases(report)


def _cases(report: Path) -> dict:
    counts = {"cases": 0, "failures": 0}
    for line in report.read_text().splitlines() if report.exists() else ():
        event = json.loads(line)
        for kind, body in event.items():
            if kind == "ScenarioFinished":
                counts["cases"] += 1
                counts["failures"] += 1 if body.get("status") == "failure" else 0
    return counts


@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_fuzzing_finds_no_server_error_and_no_schema_violation(service, tmp_path, with_key):
    headers = [f"Authorization: Bearer {KEY}"] if with_key else []
    # Without a key every /v1 answer is 401: random fuzzing shows that, the coverage phase adds nothing.
    out, counts = _schemathesis(
        service, tmp_path / "report.ndjson", *headers, phases="coverage,fuzzing" if with_key else "fuzzing"
    )
    summary = "\n".join(out.stdout.splitlines()[-150:])
    assert out.returncode == 0, f"schemathesis found problems:\n{summary}\n{out.stderr[-2000:]}"
    tested = re.search(r"(\d+) generated", out.stdout)
    print(f"schemathesis ({'with' if with_key else 'without'} a key): {counts} {tested.group(0) if tested else ''}")
