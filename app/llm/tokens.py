"""Counting tokens before a call, to keep prompts inside budgets and context windows.

OpenAI models: the o200k_base BPE, exactly. It comes from `bpe-openai`, which embeds the
vocabulary in the package; tiktoken downloads its vocabulary files at run time, which fails on an
air-gapped server. Other models: a conservative estimate (one token per three bytes of UTF-8),
which over-counts English and code, so a budget is never exceeded by the estimate's error.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol


class Counter(Protocol):
    def count(self, text: str) -> int: ...
    def truncate(self, text: str, tokens: int) -> str: ...


class _Bpe:
    # The encoder refuses more than 200,000 tokens at once; 50,000 characters are at most that
    # many even at four UTF-8 bytes per character. Untrusted text can be any size.
    CHUNK_CHARS = 50_000

    def __init__(self) -> None:
        import bpe_openai

        self._encoding: Any = bpe_openai.get_encoding("o200k_base")

    def _chunks(self, text: str) -> list[str]:
        return [text[i : i + self.CHUNK_CHARS] for i in range(0, len(text), self.CHUNK_CHARS)]

    def count(self, text: str) -> int:
        return sum(len(self._encoding.encode(chunk)) for chunk in self._chunks(text))

    def truncate(self, text: str, tokens: int) -> str:
        kept: list[str] = []
        left = max(0, tokens)
        for chunk in self._chunks(text):
            ids = self._encoding.encode(chunk)
            if len(ids) > left:
                kept.append(str(self._encoding.decode(ids[:left])))
                return "".join(kept)
            kept.append(chunk)
            left -= len(ids)
        return text


class _Estimate:
    BYTES_PER_TOKEN = 3

    def count(self, text: str) -> int:
        return -(-len(text.encode("utf-8")) // self.BYTES_PER_TOKEN)

    def truncate(self, text: str, tokens: int) -> str:
        limit = max(0, tokens) * self.BYTES_PER_TOKEN
        data = text.encode("utf-8")
        return data[:limit].decode("utf-8", errors="ignore") if len(data) > limit else text


@cache
def counter_for(provider: str) -> Counter:
    return _Bpe() if provider == "openai" else _Estimate()
