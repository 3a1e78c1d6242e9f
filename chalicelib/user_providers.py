"""A user's own provider endpoints (the `providers` table)."""
from __future__ import annotations

from chalicelib.catalog import ModelInfo, ProviderInfo
from chalicelib.tables import ProviderModel


def load(user_id: str) -> list[ProviderInfo]:
    return [_info(item) for item in ProviderModel.query(user_id)]


def _info(item: ProviderModel) -> ProviderInfo:
    models = tuple(
        ModelInfo(m["id"], m.get("input_cost_per_mtok"), m.get("output_cost_per_mtok"))
        for m in item.models or []
    )
    return ProviderInfo(item.provider_key, item.kind, item.base_url, models, builtin=False)
