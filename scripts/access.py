"""What each Lambda function of the app may call on AWS, and the IAM policy that says so.

One entry per function, holding exactly the calls that function makes (DESIGN §7a):
`tests/deploy/test_iam.py` runs every function under moto, records each AWS call and fails
on any call its policy does not allow, and on any grant here that no call needed. A table
is named by its key in `chalicelib.config.TABLE_ENV`; its ARN comes from the template
`scripts/merge_template.py` generates from the PynamoDB models. A query on an index is
written `"Query@<index>"`.

Lives outside `chalicelib`, so it never ships to Lambda.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from chalicelib import alerts, keys

# API Gateway WebSocket stage (`api_gateway_stage` in .chalice/config.json).
WS_STAGE = "api"

# What the app's KMS key seals, each under its own encryption context: the context keys a
# use of the key must carry exactly (`kms:EncryptionContextKeys`). The key vault seals each
# provider key under its user, provider and endpoint (`chalicelib.keys.CONTEXT_KEYS`); the
# alerts seal each webhook secret under its user and rule.
VAULT = "vault"
ALERT_SECRETS = "alert_secrets"
KMS_CONTEXTS: dict[str, tuple[str, ...]] = {
    VAULT: keys.CONTEXT_KEYS,
    ALERT_SECRETS: alerts.SECRET_CONTEXT_KEYS,
}


@dataclass(frozen=True)
class Access:
    tables: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    kms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # purpose → KMS actions
    jwt_secret: bool = False  # secretsmanager:GetSecretValue on the JWT signing secret
    invoke_runner: bool = False  # lambda:InvokeFunction on the runner
    connections: tuple[str, ...] = ()  # @connections methods: GET, POST, DELETE
    failure_queue: bool = False  # Lambda sends the runner's dropped events as the runner


# Every function that sends job events to browsers (`notify` → `websocket.post`) reads the
# user's connections on the `user` index and, when API Gateway answers 410 Gone, deletes
# the record and gives its place back (DeleteItem + UpdateItem of the counter).
_NOTIFIES = ("Query@user", "DeleteItem", "UpdateItem")

ACCESS: dict[str, Access] = {
    "api_handler": Access(
        tables={
            # users: the caller on every request; quotas and the token version on its item
            "users": ("GetItem", "PutItem", "UpdateItem"),
            "provider_keys": ("Query", "PutItem", "DeleteItem"),
            "providers": ("Query", "GetItem", "PutItem", "DeleteItem", "ConditionCheckItem"),
            # schedules: BatchGetItem for the current names of a page of runs
            "schedules": ("Query", "GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"),
            "jobs": ("GetItem", "PutItem", "UpdateItem", "Query@user"),
            "slots": ("UpdateItem",),
            "benchmark_runs": ("Query", "GetItem", "DeleteItem"),
            "connections": _NOTIFIES,
            "alerts": ("Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem"),
            "alert_events": ("Query",),
            "login_failures": ("BatchGetItem", "UpdateItem", "DeleteItem"),  # a success clears the count
            "ws_tickets": ("PutItem", "UpdateItem"),
        },
        # Stores provider keys, never reads them back; seals a rule's webhook secret and
        # reads it for a test delivery.
        kms={VAULT: ("Encrypt",), ALERT_SECRETS: ("Encrypt", "Decrypt")},
        jwt_secret=True,
        invoke_runner=True,  # a trigger dispatches its job at once
        connections=("POST", "DELETE"),  # DELETE: a logout closes the user's connections
    ),
    "tick": Access(
        tables={
            "schedules": ("Query@due", "UpdateItem"),
            "jobs": ("Query@active", "PutItem", "UpdateItem"),
            "slots": ("UpdateItem", "BatchGetItem"),  # BatchGetItem: which users have room
            "connections": _NOTIFIES,
        },
        invoke_runner=True,
        connections=("POST",),
    ),
    "runner": Access(
        tables={
            "providers": ("Query",),
            "provider_keys": ("GetItem",),
            "schedules": ("GetItem", "UpdateItem"),
            "jobs": ("GetItem", "UpdateItem", "Query@queued"),
            "slots": ("UpdateItem",),
            "benchmark_runs": ("PutItem",),
            "connections": _NOTIFIES,
            "alerts": ("Query", "UpdateItem"),  # the user's rules, and their state
            "alert_events": ("PutItem", "UpdateItem"),  # an event, then its delivery outcome
        },
        # The only function that reads a stored key; signs alert deliveries.
        kms={VAULT: ("Decrypt",), ALERT_SECRETS: ("Decrypt",)},
        invoke_runner=True,  # starts the user's next queued job
        connections=("POST",),
        failure_queue=True,
    ),
    "websocket_connect": Access(
        tables={
            "users": ("GetItem",),
            "connections": ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query@user"),
            "ws_tickets": ("GetItem", "DeleteItem"),  # a ticket is read, then consumed once
        },
        jwt_secret=True,
        connections=("GET",),  # the connection-limit heal asks whether a socket is gone
    ),
    "websocket_message": Access(
        tables={
            "connections": ("GetItem", *_NOTIFIES),
            "jobs": ("GetItem", "UpdateItem", "Query@live", "Query@user"),
            "slots": ("UpdateItem",),  # a cancelled waiting job gives its place back
        },
        connections=("POST",),
    ),
    "websocket_disconnect": Access(
        tables={"connections": ("GetItem", "DeleteItem", "UpdateItem")},
    ),
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _arn(service: str, resource: str) -> dict[str, str]:
    return _sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}")


def function_name(function: str) -> str:
    """The deployed name, `${Stage}` left for CloudFormation to fill."""
    return f"benchmark-scheduler-${{Stage}}-{function}"


def policy(function: str, table_ids: Mapping[str, str]) -> dict[str, Any]:
    """The IAM policy document of `function`; `table_ids` maps a table to its logical id."""
    access = ACCESS[function]
    statements: list[dict[str, Any]] = [{
        # Lambda writes the function's logs as the function: its own log group only.
        "Sid": "OwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": _arn("logs", f"log-group:/aws/lambda/{function_name(function)}:*"),
    }]
    for table, actions in sorted(access.tables.items()):
        logical = table_ids[table]
        items = sorted(f"dynamodb:{a}" for a in actions if "@" not in a)
        indexes = sorted(a.split("@", 1)[1] for a in actions if "@" in a)
        if items:
            statements.append({
                "Sid": logical, "Effect": "Allow", "Action": items,
                "Resource": {"Fn::GetAtt": [logical, "Arn"]},
            })
        if indexes:
            statements.append({
                "Sid": f"{logical}Indexes", "Effect": "Allow", "Action": ["dynamodb:Query"],
                "Resource": [_sub(f"${{{logical}.Arn}}/index/{index}") for index in indexes],
            })
    for purpose, actions in sorted(access.kms.items()):
        statements.append({
            "Sid": "".join(part.capitalize() for part in purpose.split("_")),
            "Effect": "Allow",
            "Action": [f"kms:{a}" for a in actions],
            "Resource": {"Fn::GetAtt": ["KeyVaultKey", "Arn"]},
            "Condition": {
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": list(KMS_CONTEXTS[purpose])},
                "Null": {"kms:EncryptionContextKeys": "false"},
            },
        })
    if access.jwt_secret:
        statements.append({
            "Sid": "JwtSecret", "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
            "Resource": {"Ref": "JwtSecret"},
        })
    if access.invoke_runner:
        # By name: a GetAtt of the runner from its own role would be a circular dependency.
        statements.append({
            "Sid": "InvokeRunner", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
            "Resource": _arn("lambda", f"function:{function_name('runner')}"),
        })
    if access.connections:
        # Connection ids are API Gateway's, one per client: the only wildcard besides logs.
        statements.append({
            "Sid": "WebsocketConnections", "Effect": "Allow", "Action": ["execute-api:ManageConnections"],
            "Resource": [
                _arn("execute-api", f"${{WebsocketAPI}}/{WS_STAGE}/{method}/@connections/*")
                for method in access.connections
            ],
        })
    if access.failure_queue:
        statements.append({
            "Sid": "FailureQueue", "Effect": "Allow", "Action": ["sqs:SendMessage"],
            "Resource": {"Fn::GetAtt": ["RunnerFailureQueue", "Arn"]},
        })
    return {"Version": "2012-10-17", "Statement": statements}
