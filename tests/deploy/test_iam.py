"""Least privilege, both ways: each function's policy in the packaged template allows every
AWS call that function makes, and nothing no call needs (DESIGN §7a).

`scenario.exercise` runs every function through its Lambda entry point under moto, with the
environment the template gives it (tables, key, secret, runner, all by the template's own
references), recording each AWS call. Each call becomes the IAM request(s) AWS would
authorize (action + resource ARN from its parameters: table or index, key, secret,
function, `@connections` ARN; KMS encryption-context keys for the conditions) and is
evaluated against that function's policy, its intrinsics resolved as CloudFormation would.
Every function starts as a fresh container (no cached secret, no remembered job owners),
so the calls a warm container skips are recorded too.
"""
from __future__ import annotations

import os

import boto3
import pytest

from scripts import access, merge_template
from tests.conftest import LambdaInvokes
from tests.deploy import scenario as scenarios
from tests.deploy.aws_calls import IamRequest, Recorder, iam_requests
from tests.deploy.iam_policy import Resolver, allows, statement_allows

# Permissions Lambda itself uses as the function, never the app's code: writing its logs,
# and sending an async event it dropped to the runner's on-failure queue.
USED_BY_LAMBDA = {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage"}

_recorded: dict[str, list[IamRequest]] = {}
_resolvers: list[Resolver] = []


@pytest.fixture
def recorded(dev_package, aws, clock, monkeypatch, provider_server) -> tuple[dict[str, list[IamRequest]], Resolver]:
    """Every function exercised once per session: its IAM requests by function name, and the
    resolver of the template's values in that run (moto's key, secret and tables)."""
    if not _recorded:
        key_id = boto3.client("kms").describe_key(KeyId=os.environ["KMS_KEY_ID"])["KeyMetadata"]["KeyId"]
        parameters = {n: str(p.get("Default", "")) for n, p in dev_package.template["Parameters"].items()}
        resolver = Resolver(
            dev_package.template,
            parameters={**parameters, "Stage": "test"},  # the session's moto tables are the `test` stage's
            physical={"KeyVaultKey": key_id, "WebsocketAPI": scenarios.API_ID},
        )
        _record_everything(dev_package, resolver, monkeypatch, clock, provider_server)
        _resolvers.append(resolver)
    return _recorded, _resolvers[0]


def _record_everything(package, resolver: Resolver, monkeypatch, clock, provider_server) -> None:
    from chalicelib import auth, aws_clients, dispatch, tables
    from chalicelib.jobs import lifecycle

    secret = boto3.client("secretsmanager").create_secret(Name="jwt", SecretString="s" * 64)["ARN"]
    resolver.physical["JwtSecret"] = secret
    monkeypatch.delenv("JWT_SECRET")
    monkeypatch.setenv("RUNNER_POLL_SECONDS", "0.05")
    monkeypatch.setenv("ALLOW_PRIVATE_ENDPOINTS", "true")  # the provider is on loopback

    def env_of(function: str) -> dict[str, str]:
        # A fresh container: nothing cached from another function's calls.
        monkeypatch.setattr(auth, "_secret_cache", {})
        monkeypatch.setattr(lifecycle, "_owners", lifecycle._Owners())
        logical = merge_template.function_logical_id(function)
        variables = package.props(logical)["Environment"]["Variables"]
        return {name: str(resolver.resolve(value)) for name, value in variables.items() if name != "STAGE"}

    recorder = Recorder()
    with recorder.installed(monkeypatch, tables._shared_connection().client):
        aws_clients.reset()
        invokes = LambdaInvokes()
        dispatch.lambda_client().meta.events.register("before-call.lambda.Invoke", invokes.record)
        run = scenarios.Scenario(recorder, env_of, monkeypatch, clock, provider_server.base_url_for("openai"))
        scenarios.exercise(run, invokes)
    aws_clients.reset()
    for function in merge_template.functions():
        _recorded[function] = [r for call in recorder.of(function) for r in iam_requests(call)]


def _statements(package, resolver: Resolver, function: str) -> list[dict]:
    document = package.role_policy(merge_template.function_logical_id(function))
    return resolver.resolve(document)["Statement"]


@pytest.mark.parametrize("function", sorted(access.ACCESS))
def test_every_call_the_function_makes_is_allowed_by_its_own_policy(function, recorded, dev_package):
    requests, resolver = recorded
    assert requests[function], f"{function} made no AWS call: is it exercised?"
    statements = _statements(dev_package, resolver, function)
    refused = sorted({str(r) for r in requests[function] if not allows(statements, r)})
    assert not refused, (
        f"{function}'s policy refuses calls it makes (grant them in scripts/access.py):\n  " + "\n  ".join(refused)
    )


@pytest.mark.parametrize("function", sorted(access.ACCESS))
def test_every_grant_of_the_policy_is_used_by_a_call(function, recorded, dev_package):
    requests, resolver = recorded
    unused = []
    for statement in _statements(dev_package, resolver, function):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if action in USED_BY_LAMBDA:
                continue
            for resource in resources:
                narrowed = {**statement, "Action": action, "Resource": resource}
                if not any(statement_allows(narrowed, r) for r in requests[function]):
                    unused.append(f"{action} on {resource}")
    assert not unused, (
        f"{function}'s policy grants what no call needs (remove it from scripts/access.py):\n  " + "\n  ".join(unused)
    )


def test_lambda_only_permissions_name_the_functions_own_log_group_and_queue(dev_package):
    for function in merge_template.functions():
        document = dev_package.role_policy(merge_template.function_logical_id(function))
        for statement in document["Statement"]:
            actions = set(statement["Action"])
            if actions & {"logs:CreateLogStream", "logs:PutLogEvents"}:
                assert statement["Resource"]["Fn::Sub"].endswith(f"/aws/lambda/benchmark-scheduler-${{Stage}}-{function}:*")
            if "sqs:SendMessage" in actions:
                assert function == "runner" and statement["Resource"] == {"Fn::GetAtt": ["RunnerFailureQueue", "Arn"]}


def test_a_call_outside_the_policy_is_refused_by_the_evaluation(recorded, dev_package):
    """The evaluation can say no: the tick may not read stored keys, nor post to another
    API's connections, nor decrypt."""
    requests, resolver = recorded
    statements = _statements(dev_package, resolver, "tick")
    runner_calls = requests["runner"]
    decrypt = next(r for r in runner_calls if r.action == "kms:Decrypt")
    key_read = next(r for r in runner_calls if r.action == "dynamodb:GetItem" and "provider_keys" in r.resource)
    post = next(r for r in requests["tick"] if r.action == "execute-api:ManageConnections")
    elsewhere = IamRequest(post.action, post.resource.replace(scenarios.API_ID, "otherapi01"))
    for request in (decrypt, key_read, elsewhere):
        assert not allows(statements, request), request
    # and the runner may not decrypt without the encryption context the vault always sets
    runner_statements = _statements(dev_package, resolver, "runner")
    assert allows(runner_statements, decrypt)
    assert not allows(runner_statements, IamRequest(decrypt.action, decrypt.resource))
