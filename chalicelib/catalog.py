"""Which providers and models exist for a user, what they cost, and how a name resolves.

Built-in providers are code; a user's own providers live in the `providers` table; the dev
stack's `demo` provider appears when `DEMO_PROVIDER_URL` names its server. Prices are list
prices in US$ per 1M tokens (input, output) as published by the providers in 2025; a user
provider's models may override them. A model without a price costs 0 with `cost_known` false.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from chalicelib.errors import Unprocessable


@dataclass(frozen=True)
class ModelInfo:
    id: str
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None

    def public(self) -> dict:
        return {
            "id": self.id,
            "input_cost_per_mtok": self.input_cost_per_mtok,
            "output_cost_per_mtok": self.output_cost_per_mtok,
        }


@dataclass(frozen=True)
class ProviderInfo:
    key: str
    kind: str  # wire format: openai | anthropic | gemini
    base_url: str
    models: tuple[ModelInfo, ...]
    builtin: bool = True
    # Built-ins accept any model id (providers add models faster than this table grows);
    # user providers and the demo accept only the models they list.
    open_model_list: bool = False

    def model(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models if m.id == model_id), None)

    def public(self) -> dict:
        return {
            "provider_key": self.key,
            "kind": self.kind,
            "base_url": self.base_url,
            "builtin": self.builtin,
            "models": [m.public() for m in self.models],
        }


@dataclass(frozen=True)
class ResolvedModel:
    """A schedule's model name bound to a provider: what the engine needs to call it."""

    provider_key: str
    kind: str
    base_url: str
    model: str  # the id sent to the API
    name: str  # as the user wrote it
    input_cost_per_mtok: float | None
    output_cost_per_mtok: float | None


def _models(*rows: tuple[str, float, float]) -> tuple[ModelInfo, ...]:
    return tuple(ModelInfo(i, a, b) for i, a, b in rows)


_BUILTINS: tuple[ProviderInfo, ...] = (
    ProviderInfo(
        "openai",
        "openai",
        "https://api.openai.com/v1",
        _models(
            ("gpt-5", 1.25, 10.0),
            ("gpt-5-mini", 0.25, 2.0),
            ("gpt-5-nano", 0.05, 0.40),
            ("gpt-4.1", 2.0, 8.0),
            ("gpt-4.1-mini", 0.40, 1.60),
            ("gpt-4.1-nano", 0.10, 0.40),
            ("gpt-4o", 2.50, 10.0),
            ("gpt-4o-mini", 0.15, 0.60),
            ("o1", 15.0, 60.0),
            ("o3", 2.0, 8.0),
            ("o3-mini", 1.10, 4.40),
            ("o4-mini", 1.10, 4.40),
        ),
        open_model_list=True,
    ),
    ProviderInfo(
        "anthropic",
        "anthropic",
        "https://api.anthropic.com/v1",
        _models(
            ("claude-opus-4-1", 15.0, 75.0),
            ("claude-sonnet-4-5", 3.0, 15.0),
            ("claude-sonnet-4-0", 3.0, 15.0),
            ("claude-haiku-4-5", 1.0, 5.0),
            ("claude-3-7-sonnet-latest", 3.0, 15.0),
            ("claude-3-5-haiku-latest", 0.80, 4.0),
        ),
        open_model_list=True,
    ),
    ProviderInfo(
        "gemini",
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta",
        _models(
            ("gemini-2.5-pro", 1.25, 10.0),
            ("gemini-2.5-flash", 0.30, 2.50),
            ("gemini-2.5-flash-lite", 0.10, 0.40),
            ("gemini-2.0-flash", 0.10, 0.40),
        ),
        open_model_list=True,
    ),
)

BUILTIN_KEYS = frozenset(p.key for p in _BUILTINS) | {"demo"}

# Bare model ids the catalog resolves by prefix (DESIGN §3).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gemini"),
)

MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+\-/]{0,199}$")

DEMO_MODELS = _models(("fast", 0.0, 0.0), ("slow", 0.0, 0.0))


def builtin_providers() -> list[ProviderInfo]:
    providers = list(_BUILTINS)
    demo_url = os.environ.get("DEMO_PROVIDER_URL")
    if demo_url:
        providers.append(ProviderInfo("demo", "openai", demo_url, DEMO_MODELS))
    return providers


def providers_for(user_id: str) -> dict[str, ProviderInfo]:
    """Built-ins plus the user's own providers, by key."""
    from chalicelib import user_providers

    found = {p.key: p for p in builtin_providers()}
    for provider in user_providers.load(user_id):
        found.setdefault(provider.key, provider)
    return found


def resolve(name: str, providers: Mapping[str, ProviderInfo]) -> ResolvedModel:
    """Bind `provider/model` or a bare catalog id to its provider; 422 naming it otherwise."""
    if not isinstance(name, str) or not MODEL_ID_PATTERN.fullmatch(name):
        raise Unprocessable(
            f"Invalid model id: {name!r}", {"field": "models", "model": name}
        )
    provider_key, sep, model_id = name.partition("/")
    provider = providers.get(provider_key) if sep else None
    if provider is None:
        # A bare id, or an id whose own name holds a slash (OpenRouter-style) under a prefix.
        model_id = name
        provider = next(
            (providers.get(p) for prefix, p in _PREFIXES if name.startswith(prefix)), None
        )
    if provider is None or not model_id:
        raise Unprocessable(
            f"Unknown model: {name!r} (use provider/model or a catalog id)",
            {"field": "models", "model": name},
        )
    info = provider.model(model_id)
    if info is None and not provider.open_model_list:
        raise Unprocessable(
            f"Unknown model: {name!r} (provider {provider.key!r} has no model {model_id!r})",
            {"field": "models", "model": name},
        )
    return ResolvedModel(
        provider_key=provider.key,
        kind=provider.kind,
        base_url=provider.base_url,
        model=model_id,
        name=name,
        input_cost_per_mtok=info.input_cost_per_mtok if info else None,
        output_cost_per_mtok=info.output_cost_per_mtok if info else None,
    )


def resolve_all(names: Iterable[str], providers: Mapping[str, ProviderInfo]) -> list[ResolvedModel]:
    return [resolve(name, providers) for name in names]
