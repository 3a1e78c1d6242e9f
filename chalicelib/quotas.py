"""Per-user caps on what a user can create, kept by DynamoDB conditions.

A user's count of each capped kind lives on their user item (`schedule_count`,
`provider_count`, `alert_rule_count`). Each create is one transaction with `ADD count 1 IF count < cap` and
each delete one with `ADD count -1`, so concurrent creates can never pass the cap (a count
read before the write could), and nothing is counted that was not written.

| kind | setting | default |
|---|---|---|
| schedules | `MAX_SCHEDULES_PER_USER` | 200 |
| own providers | `MAX_PROVIDERS_PER_USER` | 50 |
| alert rules | `ALERT_MAX_RULES` | 100 |

(Models per provider, `MAX_MODELS_PER_PROVIDER`, are a list inside the provider item: a
body limit, checked by `user_providers.ProviderBody`.)
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute
from pynamodb.expressions.condition import Condition

from chalicelib import config, writes
from chalicelib.errors import Unprocessable, invalid
from chalicelib.tables import UserModel

LABEL = "quota"  # the counter's label in a transaction


@dataclass(frozen=True)
class Cap:
    kind: str  # as users read it: "schedules"
    setting: str
    default: int
    count: NumberAttribute

    def limit(self) -> int:
        return config.int_setting(self.setting, self.default)

    def take(self, tx: writes.Tx, user_id: str) -> writes.Tx:
        """Add "one more, if below the cap" to `tx` (labelled `LABEL`)."""
        return tx.update(LABEL, UserModel(user_id), [self.count.add(1)], self._has_room())

    def give_back(self, tx: writes.Tx, user_id: str) -> writes.Tx:
        return tx.update(LABEL, UserModel(user_id), [self.count.add(-1)])

    def exceeded(self) -> Unprocessable:
        limit = self.limit()
        return invalid(
            self.kind,
            f"at most {limit} {self.kind} per user ({self.setting}): delete one first",
            limit={"max": limit},
        )

    def _has_room(self) -> Condition:
        return self.count.does_not_exist() | (self.count < self.limit())


SCHEDULES = Cap("schedules", "MAX_SCHEDULES_PER_USER", 200, UserModel.schedule_count)
PROVIDERS = Cap("providers", "MAX_PROVIDERS_PER_USER", 50, UserModel.provider_count)
ALERT_RULES = Cap("alert rules", "ALERT_MAX_RULES", 100, UserModel.alert_rule_count)


def max_models_per_provider() -> int:
    return config.int_setting("MAX_MODELS_PER_PROVIDER", 200)
