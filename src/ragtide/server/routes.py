"""The service's own endpoints: questions, documents and ingest jobs, collections, health."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException

from ..filters import MAX_CHARS as MAX_FILTER_CHARS
from ..filters import Filter
from ..ingest.loaders import SNIFF_BYTES, known_type, looks_like_text, unsupported
from ..ingest.metadata import parse_pairs
from ..query import Answer
from ..query.conversation import MAX_HISTORY, MAX_MESSAGE_CHARS, Speaker, Turn
from ..vocabulary import MAX_HITS, Consistency, Mode
from .access import caller, reader
from .errors import documented, error, redact
from .jobs import Job, new_id
from .keys import Key
from .metrics import Metrics
from .uploads import Uploads, safe_name

_JOB_ID = re.compile(r"[0-9a-f]{32}")
_DOC_ID = _JOB_ID

STATIC = Path(__file__).parent / "static"

health = APIRouter(responses=documented(500))
# Every /v1 endpoint may answer these; each adds its own.
api = APIRouter(responses=documented(400, 401, 403, 422, 429, 500, 503, 504))


# -- health and the page ------------------------------------------------------------------


@health.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@health.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@health.get("/readyz", summary="The model is loaded and Milvus answers", responses=documented(503))
async def readyz(request: Request):
    state = request.app.state
    if not getattr(state, "ready", False):
        return error(503, "the embedding model is still loading")
    try:
        await asyncio.wait_for(state.rag.acollections(), timeout=5)
    except Exception as e:  # noqa: BLE001 -- any failure means not ready
        return error(503, f"Milvus is not answering: {redact(str(e)) or type(e).__name__}")
    return {"status": "ready"}


@health.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# -- questions ----------------------------------------------------------------------------


class TurnIn(BaseModel):
    role: Speaker
    content: str = Field(max_length=MAX_MESSAGE_CHARS)


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000, description="the question")
    top_k: int | None = Field(None, ge=1, le=MAX_HITS, description="passages to retrieve (default 5)")
    filter: str | None = Field(
        None,
        description=f"at most {MAX_FILTER_CHARS:,} characters: fields source, doc_id, page, chunk_index, "
        'metadata["key"]; == != < <= > >= in like and or not; e.g. metadata["type"] == "pdf" and page >= 40',
    )
    mode: Mode | None = Field(
        None, description="retrieval mode (default: hybrid where the backend has full-text search)"
    )
    consistency: Consistency | None = None
    stream: bool = Field(False, description="stream the answer as Server-Sent Events")
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="the conversation so far, oldest first: a follow-up is read with it before it is searched",
    )


class SourceOut(BaseModel):
    id: str
    text: str
    source: str
    page: int | None
    where: str = Field("", description='where in the document: "page 12", "slide 4", "sheet Revenue"')
    section: str = Field("", description='the headings above the passage: "Installation › Proxies"')
    highlights: list[list[int]] = Field(
        default_factory=list, description="[start, end] character offsets in text of the sentences the answer quotes"
    )
    score: float
    metadata: dict[str, Any] = Field(default_factory=dict, description="the document's metadata (type, title, yours)")


class RetrievalOut(BaseModel):
    mode: str
    reranked_by: str | None = None
    notes: list[str] = []


class QueryResponse(BaseModel):
    answer: str
    searched: str | None = Field(
        None, description="the question as searched, when a follow-up was read with the history (else null)"
    )
    abstained: bool = Field(False, description='the documents do not answer it: "Not found in your documents."')
    support: float | None = Field(
        None, description="share of the answer's sentences that the passages they cite support (0 to 1)"
    )
    flagged_citations: list[int] = Field(
        default_factory=list, description="citation numbers whose passage does not support their sentence"
    )
    sources: list[SourceOut]
    mode: str = Field(description='"llm" or "extractive"')
    retrieval: RetrievalOut
    timings: dict[str, float]
    error: str | None = Field(None, description="why the LLM failed, if it did (the answer is then extractive)")


@api.post(
    "/query",
    response_model=QueryResponse,
    summary="Answer a question from the collection",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "JSON, or with stream=true Server-Sent Events: token* sources done",
        },
        **documented(413, 502),  # 413: a body (a long history) past the JSON size limit
    },
)
async def query(body: QueryRequest, request: Request):
    state = request.app.state
    config = state.config
    if len(body.question) > config.max_question_chars:
        raise HTTPException(422, f"question: at most {config.max_question_chars} characters")
    key = caller(request)
    ask = reader(request).aquery(
        body.question,
        top_k=body.top_k,
        filter=Filter.parse(body.filter) if body.filter else None,
        mode=body.mode,
        consistency=body.consistency,
        stream=body.stream,
        history=[Turn(t.role, t.content) for t in body.history],
    )
    answer: Answer = await asyncio.wait_for(ask, timeout=config.request_timeout_s)
    state.metrics.questions.labels(answer.retrieval).inc()
    if not body.stream:
        state.metrics.answered(answer)
        return shown(answer, state.uploads, key.sees)
    return EventSourceResponse(_events(answer, state.uploads, state.metrics, key.sees), ping=15)


def shown(answer: Answer, uploads: Uploads, tenant: str | None = None) -> dict[str, Any]:
    """The answer as clients see it: sources named as uploaded, not by server path."""
    out = answer.to_dict()
    for source in out["sources"]:
        source["source"] = uploads.name_of(source["source"], tenant)
    return out


async def _events(
    answer: Answer, uploads: Uploads, metrics: Metrics, tenant: str | None
) -> AsyncIterator[dict[str, str]]:
    try:
        async for delta in answer:
            yield {"event": "token", "data": json.dumps({"text": delta})}
    except Exception as e:  # noqa: BLE001 -- the stream has started: report in-band
        yield {"event": "error", "data": json.dumps({"type": type(e).__name__, "message": redact(str(e))})}
        return
    metrics.answered(answer)
    full = shown(answer, uploads, tenant)
    yield {"event": "sources", "data": json.dumps(full["sources"])}
    yield {
        "event": "done",
        "data": json.dumps(
            {
                k: full[k]
                for k in (
                    "answer",
                    "searched",
                    "abstained",
                    "support",
                    "flagged_citations",
                    "mode",
                    "retrieval",
                    "timings",
                )
            }
            | ({"error": full["error"]} if "error" in full else {})
        ),
    }


# -- documents and ingest jobs ------------------------------------------------------------


@api.post(
    "/documents",
    status_code=202,
    summary="Upload files; they are ingested by a background job",
    responses=documented(413, 415),
)
async def upload(
    request: Request,
    meta: list[str] = Form(
        default=[], description="KEY=VALUE, repeatable: stored with every file of this upload, for filters"
    ),
    files: list[UploadFile] = File(
        ..., description="documents: text, Markdown, HTML, PDF, Office, OpenDocument, EPUB, CSV, JSON, e-mail, gzipped"
    ),
) -> JSONResponse:
    state = request.app.state
    config = state.config
    key = caller(request, "write")
    if not files:
        raise HTTPException(422, "files: at least one file")
    if len(files) > config.max_files:
        raise HTTPException(413, f"at most {config.max_files} files per upload, got {len(files)}")
    names = [safe_name(f.filename or "") for f in files]
    for file, name in zip(files, names):
        if not (known_type(Path(name)) or looks_like_text(await _head(file))):
            raise HTTPException(415, f"{name!r}: {unsupported(Path(name))}")
    if len(set(names)) != len(names):
        raise HTTPException(422, "files: two files of this upload have the same name")
    metadata = parse_pairs(meta)
    if config.quota_chunks:
        used = await state.rag.for_tenant(key.tenant).achunks()
        if used >= config.quota_chunks:
            raise HTTPException(
                413,
                f"this tenant's quota of {config.quota_chunks:,} chunks is used ({used:,} stored); delete documents first",
            )
    job_id = new_id()
    await state.uploads.receive(job_id, files, names, int(config.max_upload_mb * 2**20))
    job = state.jobs.submit(job_id, names, metadata, key.tenant or "")
    state.audit.record(key, "upload", job=job.id, files=names)
    return JSONResponse({"job": job.to_dict()}, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


async def _head(file: UploadFile) -> bytes:
    """An upload's first bytes, to tell text from binary as ingest will (the file is rewound)."""
    head = await file.read(SNIFF_BYTES)
    await file.seek(0)
    return head


@api.get(
    "/jobs/{job_id}",
    summary="An ingest job's progress: files done, chunks, failures with reasons",
    responses=documented(404),
)
async def job(job_id: str, request: Request) -> dict[str, Any]:
    return _job(request, job_id, caller(request)).to_dict()


@api.delete(
    "/jobs/{job_id}",
    summary="Cancel a queued or running job: what it wrote is removed, the files it replaced come back",
    responses=documented(404),
)
async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
    key = caller(request, "write")
    _job(request, job_id, key)
    cancelled = await request.app.state.jobs.cancel(job_id)
    request.app.state.audit.record(key, "cancel", job=job_id)
    return dict(cancelled.to_dict())


def _job(request: Request, job_id: str, key: Key) -> Job:
    found = request.app.state.jobs.get(job_id) if _JOB_ID.fullmatch(job_id) else None
    if found is None or (key.sees is not None and found.tenant != key.sees):  # another tenant's: not there
        raise HTTPException(404, f"no job {job_id[:40]!r}")
    return found


@api.get("/documents", summary="The documents: format, pages, chunks, size, when ingested, metadata")
async def documents(request: Request) -> dict[str, Any]:
    state = request.app.state
    sees = caller(request).sees
    listed = []
    for info in await reader(request).acatalog():
        entry = info.to_dict()
        entry["source"], entry["name"] = state.uploads.name_of(info.source, sees), Path(info.source).name
        listed.append(entry)
    return {"documents": sorted(listed, key=lambda d: d["source"])}


@api.delete("/documents/{doc_id}", summary="Delete a document by id", responses=documented(404))
async def delete(doc_id: str, request: Request) -> dict[str, Any]:
    state = request.app.state
    if not _DOC_ID.fullmatch(doc_id):
        raise HTTPException(
            404, f"no document {doc_id[:40]!r} (ids are 32 hex digits, as GET /v1/documents lists them)"
        )
    key = caller(request, "write")
    engine = reader(request, "write")  # a tenant's key deletes only its tenant's documents
    source = (await engine.adocuments()).get(doc_id)
    if source is None:
        raise HTTPException(404, f"no document {doc_id!r}")
    removed = await engine.adelete(doc_id)
    uploaded = Path(source)
    files = state.uploads.files.resolve()
    if uploaded.parent == files or uploaded.parent.parent == files:  # an upload, a tenant's included
        uploaded.unlink(missing_ok=True)
    state.audit.record(key, "delete", documents=[doc_id])
    return {"deleted": doc_id, "source": state.uploads.name_of(source, key.sees), "chunks": removed}


@api.get("/me", summary="Who the caller is: its key's id, tenant and role")
async def me(request: Request) -> dict[str, Any]:
    key = caller(request)
    return {"key": key.id, "tenant": key.tenant, "role": key.role}


@api.get("/collections", summary="The collections at this Milvus, and the one this service answers from")
async def collections(request: Request) -> dict:
    caller(request, "admin")  # other collections are no tenant's business
    rag = request.app.state.rag
    info = await rag.astatus()
    current = (
        None
        if info is None
        else {
            "name": info.name,
            "model": info.model,
            "dim": info.dim,
            "documents": info.documents,
            "chunks": info.chunks,
            "modes": list(info.modes),
            "default_mode": info.default_mode,
            "note": info.note,
            "incomplete": info.incomplete,
            "quantize": info.quantize,
            "created_with": info.embedded_with,
            "sentence_vectors": info.sentences,
        }
    )
    return {"collections": await rag.acollections(), "current": current or {"name": rag.settings.collection}}
