"""OpenAI's chat-completions protocol, so any OpenAI-speaking chat UI or client can use
ragtide as its "model": the last user message is answered from the collection, read with
the conversation before it (a follow-up is made to stand alone before it is searched), with
the cited sources listed after the answer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..query import Answer
from ..query.conversation import MAX_HISTORY, SPEAKERS, Turn
from .access import caller, reader
from .errors import documented, redact
from .metrics import Metrics
from .uploads import Uploads

router = APIRouter(responses=documented(400, 401, 403, 422, 429, 500, 503, 504))
MODEL = "ragtide"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=64)
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, ...: accepted, not used
    model: str | None = Field(None, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_HISTORY)
    stream: bool = False


@router.get("/models", summary="The model this service answers as (OpenAI's format)")
async def models() -> dict:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "ragtide"}]}


@router.post(
    "/chat/completions",
    summary="Answer the last user message, read with the ones before (OpenAI's chat-completions format)",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a completion, or its chunks with stream=true"},
        **documented(413, 502),  # 413: a conversation past the JSON size limit
    },
)
async def chat_completions(body: ChatRequest, request: Request):
    state = request.app.state
    # System and tool messages are not the conversation's questions and answers: left out.
    history = [
        Turn.parse({"role": m.role, "content": text})
        for m in body.messages
        if m.role in SPEAKERS and (text := _text(m))
    ]
    if not history or history[-1].role != "user":
        raise HTTPException(422, "messages: no user message with text to answer")
    question = history.pop().text
    if len(question) > state.config.max_question_chars:
        raise HTTPException(422, f"messages: the question is longer than {state.config.max_question_chars} characters")
    key = caller(request)
    answer: Answer = await asyncio.wait_for(
        reader(request).aquery(question, stream=True, history=history), timeout=state.config.request_timeout_s
    )
    state.metrics.questions.labels(answer.retrieval).inc()
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        chunks = _chunks(answer, state.uploads, state.metrics, completion_id, created, key.sees)
        return StreamingResponse(chunks, media_type="text/event-stream")
    async for _ in answer:
        pass
    state.metrics.answered(answer)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.text + _sources_note(answer, state.uploads, key.sees),
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _text(message: Message) -> str:
    """A message's text: its content, or the text parts of a multi-part content."""
    content = message.content
    if isinstance(content, str):
        return content.strip()
    return " ".join(str(part.get("text", "")) for part in content or [] if part.get("type") == "text").strip()


def _sources_note(answer: Answer, uploads: Uploads, tenant: str | None) -> str:
    lines = [f"[{n}] {s.cite(uploads.name_of(s.source, tenant))}" for n, s in answer.citations]
    return "\n\nSources:\n" + "\n".join(lines) if lines else ""


async def _chunks(
    answer: Answer, uploads: Uploads, metrics: Metrics, completion_id: str, created: int, tenant: str | None
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for delta in answer:
            yield chunk({"content": delta})
        metrics.answered(answer)
        if answer.citations:
            yield chunk({"content": _sources_note(answer, uploads, tenant)})
    except Exception as e:  # noqa: BLE001 -- the stream has started: say so in-band, end cleanly
        yield chunk({"content": f"\n\n[ragtide error: {redact(str(e))}]"})
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"
