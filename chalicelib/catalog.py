"""The built-in providers and models, what they cost, and how a model name resolves.

Pure: no table is read here. Built-in providers are code; the dev stack's `demo` provider
appears when `DEMO_PROVIDER_URL` names its server; a user's own providers come from
`user_providers.providers_for`, which merges them with these. Prices are list
prices in US$ per 1M tokens (input, output) as published by the providers in 2025; a user
provider's models may override them. A model without a price costs 0 with `cost_known` false.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from chalicelib.errors import invalid
from chalicelib.providers import ModelTarget


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
    # A request without the user's key is refused by the provider (the runner then fails
    # the model as `auth_failed` before sending anything).
    requires_key: bool = False
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
            "requires_key": self.requires_key,
            "models": [m.public() for m in self.models],
        }


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
        requires_key=True,
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
        requires_key=True,
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
        requires_key=True,
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


def resolve(name: str, providers: Mapping[str, ProviderInfo]) -> ModelTarget:
    """Bind `provider/model` or a bare catalog id to its provider; 422 naming it otherwise."""
    if not isinstance(name, str) or not MODEL_ID_PATTERN.fullmatch(name):
        shown = str(name)[:100]
        raise invalid("models", f"{shown!r} is not a model id (1-200 characters: letters, digits and . _ : @ + - /)", model=shown)
    provider_key, sep, model_id = name.partition("/")
    provider = providers.get(provider_key) if sep else None
    if provider is None:
        # A bare id, or an id whose own name holds a slash (OpenRouter-style) under a prefix.
        model_id = name
        provider = next(
            (providers.get(p) for prefix, p in _PREFIXES if name.startswith(prefix)), None
        )
    if provider is None or not model_id:
        raise invalid("models", f"unknown model {name!r} (use provider/model or a catalog id)", model=name)
    info = provider.model(model_id)
    if info is None and not provider.open_model_list:
        raise invalid(
            "models", f"unknown model {name!r} (provider {provider.key!r} has no model {model_id!r})", model=name
        )
    return ModelTarget(
        provider_key=provider.key,
        kind=provider.kind,
        base_url=provider.base_url,
        model=model_id,
        name=name,
        input_cost_per_mtok=info.input_cost_per_mtok if info else None,
        output_cost_per_mtok=info.output_cost_per_mtok if info else None,
    )


def resolve_all(names: Iterable[str], providers: Mapping[str, ProviderInfo]) -> list[ModelTarget]:
    return [resolve(name, providers) for name in names]
