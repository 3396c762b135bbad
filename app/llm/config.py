"""The model catalogue and the routing file: loading and validation (DESIGN §4).

Both are YAML data, validated by pydantic models that forbid unknown keys, and every error names
the YAML path of the offending key (`complexity_models.high.buildr: unknown key`). The routing file
accepts the assessment's format exactly, plus optional keys: an `analyst` role, fallback chains,
explicit providers, cheaper models for the soft limit, and per-installation / per-repository
weekly budgets.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Provider = Literal["openai", "anthropic"]
Complexity = Literal["low", "medium", "high"]
Lifecycle = Literal["current", "legacy", "deprecated", "retired"]
CATEGORIES = (
    "security_auth_change",
    "schema_contract_change",
    "external_feature_reuse",
    "docs",
    "tests",
    "general",
)
BUILTIN_ROUTING = Path(__file__).resolve().parents[1] / "models.yaml"
BUILTIN_CATALOGUE = Path(__file__).resolve().parent / "catalogue.yaml"


class ConfigError(Exception):
    """A routing or catalogue file is invalid; the message names the file and YAML path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- catalogue ------------------------------------------------------------------------------


class Prices(_Strict):
    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)


class ModelInfo(_Strict):
    provider: Provider
    tier: Literal["frontier", "balanced", "fast"]
    prices: Prices
    context: int = Field(gt=0)
    max_output: int = Field(gt=0)
    lifecycle: Lifecycle
    shutdown: dt.date | None = None
    replacement: str | None = None
    cheaper: str | None = None
    structured_output: Literal["json_schema", "tool"] = "json_schema"

    def status(self, today: dt.date) -> Lifecycle:
        """The lifecycle that holds on `today`: past its shutdown date a model is retired."""
        if self.shutdown is not None and today >= self.shutdown:
            return "retired"
        return self.lifecycle

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
        """USD for one call; cached tokens are the part of the input served from the cache."""
        uncached = max(0, input_tokens - cached_tokens)
        return (
            uncached * self.prices.input
            + cached_tokens * self.prices.cached_input
            + output_tokens * self.prices.output
        ) / 1_000_000


class Catalogue(_Strict):
    models: dict[str, ModelInfo]

    def get(self, name: str) -> ModelInfo | None:
        return self.models.get(name)


# ---- routing --------------------------------------------------------------------------------


class TierModels(_Strict):
    builder: str
    auditor: str
    analyst: str | None = None


class CategoryModels(_Strict):
    builder_model_override: str | None = None
    auditor_model_override: str | None = None
    analyst_model_override: str | None = None
    secondary_auditor: str | None = None


class Quota(_Strict):
    weekly_token_cap: int = Field(gt=0)
    soft_limit_ratio: float = Field(default=0.8, gt=0, le=1)


class Budgets(_Strict):
    """Weekly token caps below the provider quotas, so one noisy repository cannot spend all."""

    installation_weekly_tokens: int | None = Field(default=None, gt=0)
    repository_weekly_tokens: int | None = Field(default=None, gt=0)
    installations: dict[int, int] = Field(default_factory=dict)
    repositories: dict[str, int] = Field(default_factory=dict)


class Routing(_Strict):
    complexity_models: dict[Complexity, TierModels]
    category_models: dict[Literal[CATEGORIES], CategoryModels] = Field(default_factory=dict)  # type: ignore[valid-type]
    provider_quotas: dict[Provider, Quota] = Field(default_factory=dict)
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    cheaper: dict[str, str] = Field(default_factory=dict)
    providers: dict[str, Provider] = Field(default_factory=dict)
    budgets: Budgets = Field(default_factory=Budgets)

    def named_models(self) -> list[tuple[str, str]]:
        """(YAML path, model) for every model the file names, in file order."""
        named: list[tuple[str, str]] = []
        for level, tier in self.complexity_models.items():
            for role in ("builder", "auditor", "analyst"):
                model = getattr(tier, role)
                if model:
                    named.append((f"complexity_models.{level}.{role}", model))
        for category, override in self.category_models.items():
            for key in (
                "builder_model_override",
                "auditor_model_override",
                "analyst_model_override",
                "secondary_auditor",
            ):
                model = getattr(override, key)
                if model:
                    named.append((f"category_models.{category}.{key}", model))
        for primary, chain in self.fallbacks.items():
            named.append((f"fallbacks.{primary}", primary))
            named.extend((f"fallbacks.{primary}[{i}]", m) for i, m in enumerate(chain))
        for model, cheaper in self.cheaper.items():
            named.extend([(f"cheaper.{model}", model), (f"cheaper.{model}", cheaper)])
        return named


# ---- loading --------------------------------------------------------------------------------


def _path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]" or item.startswith(("literal[", "function-")):
            continue  # pydantic's union/validator labels are not YAML keys
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def _explain(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{source}: {_path(error['loc'])}: {message}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_catalogue(path: Path | None = None) -> Catalogue:
    source = path or BUILTIN_CATALOGUE
    try:
        catalogue = Catalogue.model_validate(_read_yaml(source))
    except ValidationError as exc:
        raise ConfigError(_explain(str(source), exc)) from None
    for name, info in catalogue.models.items():
        for key in ("replacement", "cheaper"):
            target = getattr(info, key)
            if target is not None and target not in catalogue.models:
                raise ConfigError(f"{source}: models.{name}.{key}: unknown model {target!r}")
    return catalogue


@cache
def builtin_catalogue() -> Catalogue:
    return load_catalogue(BUILTIN_CATALOGUE)


def parse_routing(data: Any, catalogue: Catalogue, source: str = "routing") -> Routing:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level): expected a mapping of routing keys")
    try:
        routing = Routing.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(source, exc)) from None
    missing = [level for level in ("low", "medium", "high") if level not in routing.complexity_models]
    if missing:
        raise ConfigError(f"{source}: complexity_models.{missing[0]}: required key is missing")
    problems = [
        f"{source}: {where}: unknown model {model!r} (add it to the catalogue or name its provider "
        f"under `providers:`)"
        for where, model in routing.named_models()
        if catalogue.get(model) is None and model not in routing.providers
    ]
    if problems:
        raise ConfigError("\n".join(problems))
    return routing


def load_routing(path: Path | None = None, catalogue: Catalogue | None = None) -> Routing:
    """The routing file at `path` (AUTOPACK_MODELS), or the built-in one."""
    source = path or BUILTIN_ROUTING
    return parse_routing(_read_yaml(source), catalogue or builtin_catalogue(), str(source))
