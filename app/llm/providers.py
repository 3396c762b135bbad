"""LLM providers behind one interface: ask for JSON that fits a schema, get text and usage.

- OpenAI (and any OpenAI-compatible server through OPENAI_BASE_URL: vLLM, Ollama, LM Studio):
  Chat Completions with `response_format: json_schema` (strict), the one structured-output API
  those servers share.
- Anthropic: native structured output (`output_config.format`, json_schema) for current models;
  forced tool use with `input_schema` for older ones (the catalogue's `structured_output: tool`).
  Claude Opus 5.5 rejects a forced `tool_choice` with a 400, so it cannot be the only way.

Timeouts are always set and SDK retries kept to one: the chain and the inbox retry, not the SDK.
Every SDK failure becomes a `ProviderError`, which moves the caller to the next model of its chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int  # all input, cached included
    cached_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class RawAnswer:
    text: str  # the JSON text, not yet validated
    usage: Usage
    model: str  # the model that answered, as the provider reports it


@dataclass(frozen=True)
class StructuredRequest:
    """One call: the conversation and the JSON schema its answer must fit."""

    model: str
    system: str
    messages: list[Message]
    schema_name: str
    schema: dict[str, Any]
    max_output: int
    structured_output: str  # "json_schema" or "tool" (the catalogue's entry for the model)


class ProviderError(Exception):
    """A call failed: rate limit, server error, timeout, refused request. Try the next model."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Provider(Protocol):
    name: str

    async def complete(self, call: StructuredRequest) -> RawAnswer: ...


def _kind(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if status == 429 or name == "RateLimitError":
        return "rate_limited"
    if name in ("APITimeoutError",):
        return "timeout"
    if name in ("APIConnectionError",):
        return "connection"
    if isinstance(status, int) and status >= 500:
        return "server_error"
    if isinstance(status, int):
        return f"http_{status}"
    return "error"


def _message(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


class OpenAIProvider:
    name = "openai"

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float) -> None:
        import openai

        # Another server speaking OpenAI's API (vLLM, Ollama, LM Studio): its structured output
        # enforces a different subset of JSON Schema (app.llm.dialects).
        self.compatible_server = bool(base_url) and "api.openai.com" not in str(base_url)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "unset", base_url=base_url, timeout=timeout, max_retries=1
        )

    async def complete(self, call: StructuredRequest) -> RawAnswer:
        import openai

        try:
            request: dict[str, Any] = {
                "model": call.model,
                "messages": [
                    {"role": "system", "content": call.system},
                    *({"role": m.role, "content": m.content} for m in call.messages),
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": call.schema_name, "schema": call.schema, "strict": True},
                },
                "max_completion_tokens": call.max_output,
            }
            response = await self._client.chat.completions.create(**request)
        except openai.APIError as exc:
            raise ProviderError(_kind(exc), _message(exc)) from exc
        if not response.choices:
            raise ProviderError("empty", "no choices in the answer")
        choice = response.choices[0]
        usage = response.usage
        cached = 0
        if usage is not None and usage.prompt_tokens_details is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        return RawAnswer(
            text=choice.message.content or choice.message.refusal or "",
            usage=Usage(usage.prompt_tokens if usage else 0, cached, usage.completion_tokens if usage else 0),
            model=response.model or call.model,
        )


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, api_key: str | None, base_url: str | None, timeout: float) -> None:
        import anthropic

        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "unset", base_url=base_url, timeout=timeout, max_retries=1
        )

    async def complete(self, call: StructuredRequest) -> RawAnswer:
        import anthropic

        options: dict[str, Any]
        if call.structured_output == "tool":
            options = {
                "tools": [
                    {
                        "name": call.schema_name,
                        "description": "Record the answer.",
                        "input_schema": call.schema,
                    }
                ],
                "tool_choice": {"type": "tool", "name": call.schema_name},
            }
        else:
            options = {"output_config": {"format": {"type": "json_schema", "schema": call.schema}}}
        try:
            request = {
                "model": call.model,
                "max_tokens": call.max_output,
                # The rules are identical on every call: cache them.
                "system": [{"type": "text", "text": call.system, "cache_control": {"type": "ephemeral"}}],
                "messages": [{"role": m.role, "content": m.content} for m in call.messages],
                **options,
            }
            response = await self._client.messages.create(**request)
        except anthropic.APIError as exc:
            raise ProviderError(_kind(exc), _message(exc)) from exc
        text = ""
        for block in response.content:
            if block.type == "tool_use" and call.structured_output == "tool":
                text = json.dumps(block.input)
                break
            if block.type == "text":
                text += block.text
        usage = response.usage
        cached = usage.cache_read_input_tokens or 0
        written = usage.cache_creation_input_tokens or 0
        return RawAnswer(
            text=text,
            usage=Usage(usage.input_tokens + cached + written, cached, usage.output_tokens),
            model=response.model or call.model,
        )
