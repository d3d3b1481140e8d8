"""The command line as a user meets it: one line per problem, never a traceback."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ESSAY, RAGTIDE_CLI, UBER
from conftest import run_cli as run
from ragtide.cli import main as cli

pytestmark = pytest.mark.model  # the real embedding model: not in the fast tier


@pytest.fixture(scope="module")
def essay_db(tmp_path_factory):
    # In a subprocess: a process that opened a Lite database holds it until it exits.
    uri = str(tmp_path_factory.mktemp("cli") / "essay.db")
    assert run("ingest", str(ESSAY), "--uri", uri).returncode == 0
    return uri


def _no_traceback(stderr: str) -> None:
    for noise in ("Traceback", "Event loop is closed", "Task was destroyed", "RpcError", "MilvusException"):
        assert noise not in stderr, stderr


def test_bad_filter_is_one_line(essay_db):
    result = run("query", "What did the author do?", "--uri", essay_db, "--filter", "bad(((")
    assert result.returncode == 2
    _no_traceback(result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: filter: unknown field 'bad'") and "bad(((" in lines[0]


def test_a_raw_filter_reaches_milvus_unchecked(essay_db):
    result = run("query", "What did the author do?", "--uri", essay_db, "--raw-filter", "bad(((", "--json")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: filter: Milvus cannot use it"), result.stderr
    result = run("query", "What did the author do?", "--uri", essay_db, "--raw-filter", "chunk_index >= 0", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["sources"], result.stderr


@pytest.mark.parametrize(
    "value, says", [("100000", "100,000 is out of range: 1 to 16,384"), ("0", "0 is out of range")]
)
def test_top_k_out_of_range_names_the_limit(value, says, capsys):
    with pytest.raises(SystemExit) as exit:
        cli(["query", "q", "--top-k", value, "--uri", "/nonexistent/x.db"])
    assert exit.value.code == 2
    assert says in capsys.readouterr().err


def test_reading_a_missing_database_does_not_create_it(tmp_path, capsys):
    uri = str(tmp_path / "typo.db")
    assert cli(["query", "anything", "--uri", uri]) == 2
    assert f"no Milvus Lite database at {uri}" in capsys.readouterr().err
    assert cli(["status", "--uri", uri]) == 0
    assert "no Milvus Lite database" in capsys.readouterr().out
    assert not Path(uri).exists() and not list(tmp_path.iterdir())


def test_symlink_loop_is_named_and_the_rest_ingested(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").symlink_to("b.txt")
    (d / "b.txt").symlink_to("a.txt")
    (d / "ok.txt").write_text("The tide turns twice a day.")
    uri = str(tmp_path / "x.db")
    assert cli(["ingest", str(d), "--uri", uri]) == 1
    out, err = capsys.readouterr()
    assert "1 added" in out and "2 failed" in out
    assert "a.txt: symbolic link loop" in err and "b.txt: symbolic link loop" in err
    assert cli(["ingest", str(d / "a.txt"), "--uri", uri]) == 1  # given by name, it says what it is
    assert "a.txt: symbolic link loop" in capsys.readouterr().err


def test_odd_file_names_print_on_one_line_and_pdf_errors_read_well(tmp_path):
    d = tmp_path / "odd"
    d.mkdir()
    (d / "two\nlines.txt").write_text("Spring tides come at new and full moon.")
    (d / 'quote"back\\slash.md').write_text("Neap tides come at the quarter moons.")
    (d / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    result = run("ingest", str(d), "--uri", str(tmp_path / "x.db"))
    assert result.returncode == 1
    _no_traceback(result.stderr)
    assert "two\\nlines.txt: added" in result.stderr  # escaped, not a raw newline
    assert 'quote"back\\slash.md: added' in result.stderr
    broken = [line for line in result.stderr.splitlines() if line.startswith("error:") and "broken.pdf" in line]
    assert broken and broken[0].endswith(")") and not broken[0].endswith(".)")
    assert "2 added" in result.stdout


def test_status_flags_a_partly_stored_document(tmp_path, embedder, capsys):
    import asyncio

    from ragtide import Chunker, Document, MilvusStore
    from ragtide.store import Row

    uri = str(tmp_path / "p.db")
    doc = Document(key="/docs/half.txt", text=ESSAY.read_text()[:8000])
    chunks = Chunker(embedder).split(doc)

    async def write_half():  # as an ingest killed halfway through would leave it
        store = MilvusStore(uri, "ragtide")
        await store.open(embedder.name, embedder.dim)
        half = chunks[: len(chunks) // 2]
        await store.write([Row(c, np.ones(embedder.dim, dtype=np.float32), "v1", len(chunks)) for c in half])
        await store.close()

    asyncio.run(write_half())
    assert cli(["status", "--uri", uri]) == 0
    out = capsys.readouterr().out
    assert "0 documents" in out
    assert f"/docs/half.txt: {len(chunks) // 2} of {len(chunks)} chunks" in out


def _interruptible() -> None:
    """A shell starts background jobs with SIGINT ignored, and Python keeps it ignored: give
    the child the default, as a terminal would, whatever started the test run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_ingest_stops_cleanly_and_the_next_run_completes(tmp_path):
    from ragtide import load

    uri = str(tmp_path / "c.db")
    # A short note and ~200 chunks of the 10-K: the note is stored with the first write, and
    # the 10-K's other chunks take seconds more to embed, however fast the machine.
    note, tenk = tmp_path / "note.txt", tmp_path / "tenk.txt"
    note.write_text(ESSAY.read_text(encoding="utf-8")[:4000], encoding="utf-8")
    tenk.write_text(load(UBER).text[:240_000], encoding="utf-8")
    proc = subprocess.Popen(
        [*RAGTIDE_CLI, "ingest", str(note), str(tenk), "--uri", uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    seen = []
    for line in proc.stderr:  # interrupt once the note is stored and the 10-K is being embedded
        seen.append(line)
        if "note.txt: added" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    _no_traceback(err)
    assert "interrupted" in err
    again = run("ingest", str(note), str(tenk), "--uri", uri)
    assert again.returncode == 0, again.stderr
    assert "0 failed" in again.stdout and "1 unchanged" in again.stdout, again.stdout


HOLD = """
import sys, time
from ragtide import RAG
with RAG(uri=sys.argv[1]) as rag:
    rag.status()
    print("open", flush=True)
    time.sleep(600)
"""


def test_a_busy_lite_database_is_named_as_busy_every_time(tmp_path):
    uri = str(tmp_path / "busy.db")
    note = tmp_path / "note.txt"
    note.write_text("A short note on busy databases.", encoding="utf-8")
    assert run("ingest", str(note), "--uri", uri).returncode == 0
    # Another process holding the database, as a long ingest would.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    try:
        assert holder.stdout.readline().strip() == "open", holder.stderr.read()
        for _ in range(3):
            result = run("status", "--uri", uri)
            assert result.returncode == 2
            assert "is busy" in result.stderr and "one process at a time" in result.stderr
            _no_traceback(result.stderr)
    finally:
        holder.send_signal(signal.SIGINT)
        holder.communicate(timeout=120)
    assert run("status", "--uri", uri).returncode == 0  # free again
