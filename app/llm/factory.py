"""Builds the LLM service from settings: routing file, catalogue, providers, ledger."""

from __future__ import annotations

from app.inbox.db import Database
from app.llm.config import builtin_catalogue, load_catalogue, load_routing
from app.llm.ledger import Ledger
from app.llm.providers import AnthropicProvider, OpenAIProvider, Provider
from app.llm.service import LLM
from app.settings import Settings

LLM_TIMEOUT_SECONDS = 300.0  # a long audit can take minutes; the SDKs' own default is 10 minutes


def build_llm(settings: Settings, db: Database) -> LLM:
    """Raises ConfigError for an invalid routing file or catalogue (reported at start)."""
    catalogue = (
        load_catalogue(settings.autopack_catalogue) if settings.autopack_catalogue else builtin_catalogue()
    )
    routing = load_routing(settings.autopack_models, catalogue)
    providers: dict[str, Provider] = {}
    if settings.openai_api_key is not None or settings.openai_base_url:
        providers["openai"] = OpenAIProvider(
            settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            settings.openai_base_url,
            LLM_TIMEOUT_SECONDS,
        )
    if settings.anthropic_api_key is not None:
        providers["anthropic"] = AnthropicProvider(
            settings.anthropic_api_key.get_secret_value(), settings.anthropic_base_url, LLM_TIMEOUT_SECONDS
        )
    return LLM(routing, catalogue, providers, Ledger(db))
