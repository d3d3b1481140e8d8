"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp), streamed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from ..errors import LLMError


class LLM:
    """Streams chat completions through the ``openai`` async client.

    ``timeout`` bounds the wait for the first token and between tokens, so a stalled
    endpoint fails in bounded time even while it keeps the connection open.
    """

    def __init__(self, model: str, *, base_url: str = "", api_key: str = "", timeout: float = 60.0) -> None:
        from openai import AsyncOpenAI

        self.model = model or "gpt-4o-mini"
        self.endpoint = base_url or "https://api.openai.com/v1"
        self._timeout = timeout
        # Local servers (vLLM, Ollama, llama.cpp) accept any key; the client insists on one.
        self._client = AsyncOpenAI(
            base_url=base_url or None, api_key=api_key or "not-needed", timeout=timeout, max_retries=1
        )

    async def stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        """Yield the reply's text as it arrives. Raises :class:`LLMError` naming the endpoint."""
        try:
            response = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self.model, messages=cast(Any, messages), stream=True, temperature=0
                ),
                self._timeout,
            )
            iterator = response.__aiter__()
            while True:
                try:
                    event = await asyncio.wait_for(iterator.__anext__(), self._timeout)
                except StopAsyncIteration:
                    return
                for choice in event.choices or ():
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        yield delta
        except LLMError:
            raise
        except TimeoutError:
            raise LLMError(f"LLM at {self.endpoint} did not answer within {self._timeout:g} s") from None
        except Exception as e:
            raise LLMError(f"LLM at {self.endpoint} failed: {_describe(e)}") from None

    async def close(self) -> None:
        await self._client.close()


def _describe(error: Exception) -> str:
    from openai import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(error, APITimeoutError):
        return "timed out"
    if isinstance(error, APIConnectionError):
        return f"cannot connect ({error.__cause__ or error})"
    if isinstance(error, APIStatusError):
        detail = " ".join(str(getattr(error, "message", "") or error).split())[:300]
        return f"HTTP {error.status_code}: {detail}"
    return f"{type(error).__name__}: {error}"
