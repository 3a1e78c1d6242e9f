"""The merge template `chalice package` gets: what is generated from the code, plus
`.chalice/resources.json` (everything written by hand), for one stage.

Generated, so that a new table or index never needs the template touched:
- one `AWS::DynamoDB::Table` per model of `chalicelib.tables.ALL_MODELS`: keys, attribute
  definitions, GSIs with their projections, TTL from the model's `TTLAttribute`, on-demand
  billing, point-in-time recovery (all but `NO_PITR`), deletion protection and policies by
  stage; a throttling alarm and an output per table;
- for every function of `.chalice/config.json`: its name, the runtime and architecture the
  bundle is built for, JSON logs, and its environment (a variable per table from
  `chalicelib.config.TABLE_ENV`, and `SHARED_ENV`);
- the IAM policy of each function (`scripts/access.py`), returned separately: Chalice writes
  one role per function from a policy file (`policy_files`).

The hand-written template wins where both say something (it is deep-merged last).
Lives outside `chalicelib`, so it never ships to Lambda.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from scripts import access

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"

RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
DEPLOYED_STAGES = ("dev", "prod")

# Tables whose items are not worth restoring: connections live two hours; slots are
# counters the job registry keeps (a restore would bring back counts of jobs long gone).
NO_PITR = {"connections", "slots"}

# What a stage keeps when its stack is deleted or a resource replaced: prod keeps the data
# (tables), the key that decrypts stored API keys, and the secret that signs tokens.
RETAINED_TYPES = ("AWS::DynamoDB::Table", "AWS::KMS::Key", "AWS::SecretsManager::Secret")
STAGE_SETTINGS = {
    "dev": {"policy": "Delete", "deletion_protection": False},
    "prod": {"policy": "Retain", "deletion_protection": True},
}

# Every function's environment besides the tables.
SHARED_ENV = {
    "KMS_KEY_ID": {"Ref": "KeyVaultKey"},
    "JWT_SECRET_ARN": {"Ref": "JwtSecret"},
    "RUNNER_FUNCTION_NAME": {"Fn::Sub": access.function_name("runner")},
    "WS_URL": {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"},
    "ADMIN_EMAILS": {"Ref": "AdminEmails"},
    "METRICS_NAMESPACE": {"Fn::Sub": "benchmark-scheduler-${Stage}"},
    "LOG_LEVEL": {"Ref": "LogLevel"},
}

# Chalice's logical ids: its own name for the REST handler, CamelCase for the others.
_SPECIAL_LOGICAL_IDS = {"api_handler": "APIHandler"}


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)


def function_logical_id(function: str) -> str:
    return _SPECIAL_LOGICAL_IDS.get(function, camel(function))


def functions() -> list[str]:
    """The app's Lambda functions, as configured in `.chalice/config.json`."""
    return list(json.loads((CHALICE_DIR / "config.json").read_text())["lambda_functions"])


def table_key(model: type) -> str:
    """The model's table as `config.TABLE_ENV` names it (its `Meta.table_name` descriptor)."""
    return inspect.getattr_static(model.Meta, "table_name").table


def table_logical_id(table: str) -> str:
    return camel(table) + "Table"


def _ttl_attribute(model: type) -> str | None:
    from pynamodb.attributes import TTLAttribute

    names = [a.attr_name for a in model.get_attributes().values() if isinstance(a, TTLAttribute)]
    return names[0] if names else None


def _key_schema(schema: list[dict[str, str]]) -> list[dict[str, str]]:
    ordered = sorted(schema, key=lambda k: k["KeyType"])  # HASH before RANGE
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in ordered]


def table_resource(model: type, stage: str) -> dict[str, Any]:
    table = table_key(model)
    schema = model._get_schema()
    props: dict[str, Any] = {
        "TableName": {"Fn::Sub": f"benchmark-scheduler-${{Stage}}-{table}"},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": sorted(
            ({"AttributeName": a["AttributeName"], "AttributeType": a["AttributeType"]}
             for a in schema["attribute_definitions"]),
            key=lambda a: a["AttributeName"],
        ),
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    if schema["global_secondary_indexes"]:
        props["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index["index_name"],
                "KeySchema": _key_schema(index["key_schema"]),
                "Projection": index["projection"],
            }
            for index in sorted(schema["global_secondary_indexes"], key=lambda i: i["index_name"])
        ]
    if schema["local_secondary_indexes"]:
        raise SystemExit(f"{model.__name__}: local secondary indexes are not generated (use a GSI)")
    ttl = _ttl_attribute(model)
    if ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    if table not in NO_PITR:
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    props["DeletionProtectionEnabled"] = STAGE_SETTINGS[stage]["deletion_protection"]
    return {"Type": "AWS::DynamoDB::Table", "Properties": props}


def throttle_alarm(logical: str) -> dict[str, Any]:
    """Any throttled read or write of the table (or its GSIs, which throttle its writes)."""

    def metric(name: str, ident: str) -> dict[str, Any]:
        return {
            "Id": ident,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/DynamoDB",
                    "MetricName": name,
                    "Dimensions": [{"Name": "TableName", "Value": {"Ref": logical}}],
                },
                "Period": 300,
                "Stat": "Sum",
            },
        }

    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": {"Fn::Sub": f"benchmark-scheduler-${{Stage}}-{logical}-throttled"},
            "AlarmDescription": {"Fn::Sub": f"DynamoDB throttled requests on ${{{logical}}} (docs/operations.md)"},
            "Metrics": [
                metric("ReadThrottleEvents", "reads"),
                metric("WriteThrottleEvents", "writes"),
                {"Id": "throttled", "Expression": "reads + writes", "Label": "Throttled requests", "ReturnData": True},
            ],
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1,
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        },
    }


def generated(stage: str) -> dict[str, Any]:
    """The generated part of the merge template (tables, their alarms and outputs, and each
    function's name, runtime, architecture, logging and environment)."""
    from chalicelib import config, tables

    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    table_env: dict[str, Any] = {}
    for model in tables.ALL_MODELS:
        table = table_key(model)
        if table not in config.TABLE_ENV:
            raise SystemExit(f"{model.__name__}: table {table!r} has no variable in config.TABLE_ENV")
        logical = table_logical_id(table)
        resources[logical] = table_resource(model, stage)
        resources[f"{logical}ThrottleAlarm"] = throttle_alarm(logical)
        outputs[f"{logical}Name"] = {"Description": f"DynamoDB table {table}", "Value": {"Ref": logical}}
        table_env[config.TABLE_ENV[table]] = {"Ref": logical}
    missing = set(config.TABLE_ENV) - {table_key(m) for m in tables.ALL_MODELS}
    if missing:
        raise SystemExit(f"config.TABLE_ENV names tables no model has: {sorted(missing)}")
    for function in functions():
        resources[function_logical_id(function)] = {
            "Properties": {
                "FunctionName": {"Fn::Sub": access.function_name(function)},
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "LoggingConfig": {
                    "LogFormat": "JSON",
                    "ApplicationLogLevel": {"Ref": "LogLevel"},
                    "SystemLogLevel": "WARN",
                },
                "Environment": {"Variables": {**table_env, **SHARED_ENV}},
            }
        }
    return {"Resources": resources, "Outputs": outputs}


def policy_documents() -> dict[str, dict[str, Any]]:
    """Each function's IAM policy (function name → document)."""
    from chalicelib import tables

    table_ids = {table_key(m): table_logical_id(table_key(m)) for m in tables.ALL_MODELS}
    unknown = {t for a in access.ACCESS.values() for t in a.tables} - set(table_ids)
    if unknown:
        raise SystemExit(f"scripts/access.py grants tables no model has: {sorted(unknown)}")
    missing = set(functions()) ^ set(access.ACCESS)
    if missing:
        raise SystemExit(f"functions without (or grants for no) function in scripts/access.py: {sorted(missing)}")
    return {function: access.policy(function, table_ids) for function in functions()}


def deep_merge(base: Any, override: Any) -> Any:
    """`override` wins; dicts merge key by key (as Chalice merges its merge template)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return override


def merge_template(stage: str) -> dict[str, Any]:
    if stage not in STAGE_SETTINGS:
        raise SystemExit(f"stage {stage!r} is not deployable: {list(STAGE_SETTINGS)} are")
    hand_written = json.loads((CHALICE_DIR / "resources.json").read_text())
    template = deep_merge(generated(stage), hand_written)
    policy = STAGE_SETTINGS[stage]["policy"]
    for resource in template["Resources"].values():
        if resource.get("Type") in RETAINED_TYPES:
            resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = policy
    # A package is for one stage: the parameter cannot be overridden at deploy time.
    template["Parameters"]["Stage"].update({"AllowedValues": [stage], "Default": stage})
    return template
