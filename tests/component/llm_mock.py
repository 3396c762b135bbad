"""respx answers in the shape of the OpenAI Chat Completions and Anthropic Messages APIs."""

from __future__ import annotations

import json
from typing import Any

import httpx

OPENAI = "https://api.openai.com/v1/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"


def openai_answer(
    content: str, model: str, *, prompt: int = 1000, cached: int = 0, completion: int = 100
) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "logprobs": None,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    )


def anthropic_answer(
    content: Any,
    model: str,
    *,
    tool: bool = False,
    input_tokens: int = 800,
    cache_read: int = 0,
    output: int = 90,
) -> httpx.Response:
    block = (
        {"type": "tool_use", "id": "tu_1", "name": "Verdict", "input": content}
        if tool
        else {"type": "text", "text": content if isinstance(content, str) else json.dumps(content)}
    )
    return httpx.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "thinking", "thinking": "", "signature": "sig"}, block],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output,
                "cache_read_input_tokens": cache_read,
                "cache_creation_input_tokens": 0,
            },
        },
    )


def rate_limited(provider: str) -> httpx.Response:
    body = (
        {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": None}}
        if provider == "openai"
        else {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}
    )
    return httpx.Response(429, json=body, headers={"retry-after": "0"})


def body(call: Any) -> dict[str, Any]:
    return dict(json.loads(call.request.content))
