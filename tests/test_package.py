"""`make package`: the SAM template and the bundle that `make deploy` ships (DESIGN §7).

The template is built once per stage and session by the real `make package` (chalice package
with `.chalice/resources.json` merged, then `scripts/package.py`) into a temporary directory,
then linted with cfn-lint and checked against the app: the PynamoDB models (the source of
truth for tables), the functions Chalice generates, env wiring by `Ref`, retries, the
bundle's size and contents, and least-privilege IAM. No AWS account is involved.
Packaging needs PyPI (chalice downloads Linux wheels); repeat runs reuse chalice's
dependency cache in `.chalice/deployments/` and take seconds.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from chalicelib import config, keys, tables

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"
DEPLOYED_STAGES = ("dev", "prod")

# Chalice function name → (logical id Chalice gives it, handler).
FUNCTIONS = {
    "api_handler": ("APIHandler", "app.app"),
    "tick": ("Tick", "app.tick"),
    "runner": ("Runner", "app.runner"),
    "websocket_connect": ("WebsocketConnect", "app.ws_connect"),
    "websocket_message": ("WebsocketMessage", "app.ws_message"),
    "websocket_disconnect": ("WebsocketDisconnect", "app.ws_disconnect"),
}
PITR_TABLES = {"users", "provider_keys", "schedules", "benchmark_runs"}

# The only `*` IAM allows in the hand-written policies, each because AWS names things we do
# not know in advance (see the README's deploy section):
# - log streams: Lambda names them per container; the log groups are the stage's functions
#   (`benchmark-scheduler-<stage>-<function>`, created by the template with a retention).
# - connection ids: API Gateway makes one per WebSocket client.
STAR_EXCEPTIONS = (
    re.compile(
        r"^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        r"log-group:/aws/lambda/benchmark-scheduler-(?P<stage>[a-z]+)-\*:\*$"
    ),
    re.compile(
        r"^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        r"\$\{WebsocketAPI\}/api/POST/@connections/\*$"
    ),
)

_PACKAGE_SCRIPT = ROOT / "scripts" / "package.py"
_spec = importlib.util.spec_from_file_location("package_script", _PACKAGE_SCRIPT)
packaging = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(packaging)


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


class Package:
    def __init__(self, stage: str, outdir: Path, log: str):
        self.stage = stage
        self.outdir = outdir
        self.log = log
        self.template = json.loads((outdir / "sam.json").read_text())
        self.resources = self.template["Resources"]
        self.bundle = outdir / "deployment.zip"

    def of_type(self, kind: str) -> dict[str, dict]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == kind}

    def props(self, logical_id: str) -> dict:
        return self.resources[logical_id]["Properties"]

    def sub(self, value: object) -> object:
        """`${Stage}` of a `Fn::Sub` replaced by the packaged stage; other values unchanged."""
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return value["Fn::Sub"].replace("${Stage}", self.stage)
        return value


@pytest.fixture(scope="session", params=DEPLOYED_STAGES)
def package(request, tmp_path_factory) -> Package:
    stage = request.param
    outdir = tmp_path_factory.mktemp(f"package-{stage}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    command = [
        "make", "--no-print-directory", "package",
        f"STAGE={stage}", f"BUILD={outdir}", "REGION=us-east-1",
        f"BIN={Path(sys.executable).parent}",
        "STAMP=",  # the venv is whatever runs the tests: never (re)install from here
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    if result.returncode != 0:
        if not _pypi_reachable():
            pytest.skip("PyPI is unreachable: `chalice package` downloads Linux wheels from it")
        pytest.fail(f"make package STAGE={stage} failed:\n{log}")
    return Package(stage, outdir, log)


# --- the template as a whole ---------------------------------------------------------------


def test_cfn_lint_finds_no_error(package):
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(package.outdir / "sam.json", ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(str(m) for m in errors)
    # Warnings are allowed (there are none so far): shown in pytest's summary, not failed.
    for match in matches:
        if match.rule.id.startswith("W"):
            warnings.warn(f"cfn-lint ({package.stage}): {match}", stacklevel=1)


def test_stage_parameter_is_pinned_to_the_packaged_stage(package):
    parameter = package.template["Parameters"]["Stage"]
    assert parameter["AllowedValues"] == [package.stage]
    assert parameter["Default"] == package.stage


def test_merge_template_only_extends_resources_chalice_or_it_defines():
    """A resource in the merge template without a `Type` must be one Chalice generates:
    otherwise a renamed logical id would leave a half resource behind."""
    merge = json.loads((CHALICE_DIR / "resources.json").read_text())
    partial = {name for name, r in merge["Resources"].items() if "Type" not in r}
    expected = {logical for logical, _ in FUNCTIONS.values()} | {"ApiHandlerLogGroup"}
    assert partial == expected


# --- functions, the one-minute rule, retries -----------------------------------------------


def test_functions_are_the_apps_with_their_names_and_limits(package):
    functions = package.of_type("AWS::Serverless::Function")
    assert set(functions) == {logical for logical, _ in FUNCTIONS.values()}
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name, (logical, handler) in FUNCTIONS.items():
        props = package.props(logical)
        assert props["Handler"] == handler
        assert props["Runtime"] == runtime
        assert package.sub(props["FunctionName"]) == f"benchmark-scheduler-{package.stage}-{name}"
        assert props["CodeUri"] == "./deployment.zip"
    runner, tick, api = package.props("Runner"), package.props("Tick"), package.props("APIHandler")
    assert runner["Timeout"] == 900 and runner["MemorySize"] >= 1024
    assert tick["Timeout"] == 60
    assert api["Timeout"] <= 30  # API Gateway gives up on a REST integration after 29 s
    # The runner's own name, as config.runner_function_name() defaults to it.
    assert package.sub(runner["FunctionName"]) == f"benchmark-scheduler-{package.stage}-runner"


def test_tick_runs_every_minute_and_eventbridge_retries_within_that_minute(package):
    events = package.props("Tick")["Events"]
    schedules = [e for e in events.values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    assert schedules[0]["Properties"]["Schedule"] == "rate(1 minute)"
    assert schedules[0]["Properties"]["RetryPolicy"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 60,
    }
    others = {n: p.get("Events") for n, p in ((n, package.props(n)) for n in package.of_type("AWS::Serverless::Function")) if n != "Tick"}
    assert not any(others.values()), others


def test_async_invoke_retries_of_runner_and_tick(package):
    configs = {
        package.props(name)["FunctionName"]["Ref"]: package.props(name)
        for name in package.of_type("AWS::Lambda::EventInvokeConfig")
    }
    assert set(configs) == {"Runner", "Tick"}
    runner, tick = configs["Runner"], configs["Tick"]
    assert runner["Qualifier"] == tick["Qualifier"] == "$LATEST"
    # One retry: a runner failing before it took the job (throttled DynamoDB, cold start)
    # gets a second chance a minute later; after a crash mid-run the job is `running` and a
    # retry is a no-op (the reaper interrupts it). Older events than 5 min are superseded by
    # the tick's re-dispatch of pending jobs.
    assert runner["MaximumRetryAttempts"] == 1
    assert runner["MaximumEventAgeInSeconds"] == 300
    # The next tick is the tick's retry.
    assert tick["MaximumRetryAttempts"] == 0
    assert tick["MaximumEventAgeInSeconds"] == 60


# --- APIs and outputs ------------------------------------------------------------------------


def test_rest_and_websocket_apis_on_stage_api(package):
    assert package.resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert package.props("RestAPI")["StageName"] == "api"
    ws = package.props("WebsocketAPI")
    assert package.resources["WebsocketAPI"]["Type"] == "AWS::ApiGatewayV2::Api"
    assert ws["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"] for r in package.of_type("AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$default", "$disconnect"}
    assert package.props("WebsocketAPIStage")["StageName"] == "api"


def test_outputs_name_the_urls_and_the_tables(package):
    outputs = package.template["Outputs"]
    assert outputs["RestApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/"
    }
    ws_url = {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
    assert outputs["WebsocketUrl"]["Value"] == ws_url
    table_refs = {o["Value"].get("Ref") for o in outputs.values() if isinstance(o["Value"], dict)}
    assert set(package.of_type("AWS::DynamoDB::Table")) <= table_refs
    # The UI's config.js tells the browser where the socket is.
    assert package.props("APIHandler")["Environment"]["Variables"]["WS_URL"] == ws_url


# --- tables ----------------------------------------------------------------------------------


def _keys(schema: list[dict]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def _projection(projection: dict) -> tuple[str, tuple[str, ...]]:
    return projection["ProjectionType"], tuple(sorted(projection.get("NonKeyAttributes", [])))


def _model_tables(stage: str, monkeypatch) -> dict[str, type]:
    monkeypatch.setenv("STAGE", stage)
    for variable in config.TABLE_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    return {model.Meta.table_name: model for model in tables.ALL_MODELS}


def test_tables_match_the_pynamodb_models(package, monkeypatch):
    by_name = _model_tables(package.stage, monkeypatch)
    template_tables = {
        package.sub(r["Properties"]["TableName"]): r["Properties"]
        for r in package.of_type("AWS::DynamoDB::Table").values()
    }
    assert set(template_tables) == set(by_name)
    for name, model in by_name.items():
        props, schema = template_tables[name], model._get_schema()
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props.get("ProvisionedThroughput") is None, name
        assert _keys(props["KeySchema"]) == _keys(schema["key_schema"]), name
        assert sorted(props["KeySchema"], key=lambda k: k["KeyType"]) == props["KeySchema"], (
            f"{name}: HASH must come before RANGE"
        )
        definitions = {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]}
        assert definitions == {(a["AttributeName"], a["AttributeType"]) for a in schema["attribute_definitions"]}, name
        expected_gsis = {
            g["index_name"]: (_keys(g["key_schema"]), _projection(g["projection"]))
            for g in schema["global_secondary_indexes"]
        }
        actual_gsis = {
            g["IndexName"]: (_keys(g["KeySchema"]), _projection(g["Projection"]))
            for g in props.get("GlobalSecondaryIndexes", [])
        }
        assert actual_gsis == expected_gsis, name
        assert not schema["local_secondary_indexes"] and "LocalSecondaryIndexes" not in props, name


def test_projections_are_the_ones_the_queries_rely_on(package, monkeypatch):
    """Spelled out, so a change to a model's projection is a visible decision here too."""
    by_name = _model_tables(package.stage, monkeypatch)
    gsis = {
        (model.Meta.table_name.rsplit("-", 1)[1], g["index_name"]): _projection(g["projection"])
        for model in by_name.values()
        for g in model._get_schema()["global_secondary_indexes"]
    }
    assert gsis == {
        ("users", "email"): ("ALL", ()),
        ("schedules", "due"): ("INCLUDE", ("interval_hours",)),
        ("jobs", "user"): ("ALL", ()),
        ("jobs", "queued"): ("KEYS_ONLY", ()),
        ("jobs", "live"): ("ALL", ()),
        ("jobs", "active"): ("KEYS_ONLY", ()),
        ("connections", "user"): ("ALL", ()),
    }


def test_ttl_and_point_in_time_recovery(package, monkeypatch):
    by_name = _model_tables(package.stage, monkeypatch)
    ttl_by_table = {model.Meta.table_name: attr for model, attr in tables.TTL_ATTRIBUTES.items()}
    assert ttl_by_table == {f"benchmark-scheduler-{package.stage}-connections": "ttl"}
    for props in (r["Properties"] for r in package.of_type("AWS::DynamoDB::Table").values()):
        name = package.sub(props["TableName"])
        table = name.rsplit("-", 1)[1]
        if name in ttl_by_table:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl_by_table[name], "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props, name
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        assert pitr == (table in PITR_TABLES), name
    assert set(by_name)  # the models were read for this stage


# --- env wiring ------------------------------------------------------------------------------


def test_every_function_finds_tables_key_secret_and_runner_by_ref(package, monkeypatch):
    by_name = _model_tables(package.stage, monkeypatch)
    table_ids = {
        logical: package.sub(r["Properties"]["TableName"])
        for logical, r in package.of_type("AWS::DynamoDB::Table").items()
    }
    (key_id,) = package.of_type("AWS::KMS::Key")
    (secret_id,) = package.of_type("AWS::SecretsManager::Secret")
    for logical in package.of_type("AWS::Serverless::Function"):
        variables = package.props(logical)["Environment"]["Variables"]
        for table, variable in config.TABLE_ENV.items():
            ref = variables[variable]["Ref"]
            # the Ref'd table is the one the model reads from (its default name, too)
            assert table_ids[ref] == config.table_name(table) and table_ids[ref] in by_name, (logical, variable)
        assert variables["KMS_KEY_ID"] == {"Ref": key_id}, logical
        assert variables["JWT_SECRET_ARN"] == {"Ref": secret_id}, logical
        assert variables["STAGE"] == package.stage, logical
        if logical == "Runner":  # a Ref to itself would be a circular dependency
            assert variables["RUNNER_FUNCTION_NAME"] == package.props("Runner")["FunctionName"]
        else:
            assert variables["RUNNER_FUNCTION_NAME"] == {"Ref": "Runner"}, logical
        assert "JWT_SECRET" not in variables and "ALLOW_PRIVATE_ENDPOINTS" not in variables


def test_jwt_secret_is_generated(package):
    (secret,) = package.of_type("AWS::SecretsManager::Secret").values()
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 64 and generate["ExcludePunctuation"] is True
    assert "SecretString" not in secret["Properties"]


# --- IAM and the KMS key ---------------------------------------------------------------------


def _resources(statement: dict) -> list:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _check_resource(resource: object, stage: str) -> None:
    if isinstance(resource, dict):
        (function, value), = resource.items()
        if function in ("Ref", "Fn::GetAtt"):
            return
        assert function == "Fn::Sub", resource
        resource = value
    assert isinstance(resource, str), resource
    assert resource != "*", "a bare * resource"
    if "*" in resource:
        match = next((m for m in (p.match(resource) for p in STAR_EXCEPTIONS) if m), None)
        assert match is not None, f"undocumented wildcard: {resource}"
        assert match.groupdict().get("stage", stage) == stage, resource
    if resource.startswith("arn:"):
        assert resource.startswith("arn:${AWS::Partition}:"), resource
        service, region, account = resource.split(":")[2:5]
        assert "*" not in service + region + account, resource


@pytest.mark.parametrize("stage", DEPLOYED_STAGES)
def test_policy_files_have_no_star_but_the_documented_ones(stage):
    policy = json.loads((CHALICE_DIR / f"policy-{stage}.json").read_text())
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), actions
        for resource in _resources(statement):
            _check_resource(resource, stage)


def test_policy_files_differ_only_by_stage():
    dev = (CHALICE_DIR / "policy-dev.json").read_text()
    prod = (CHALICE_DIR / "policy-prod.json").read_text()
    assert dev.replace("benchmark-scheduler-dev-", "benchmark-scheduler-prod-") == prod


def test_every_role_carries_the_stage_policy_file(package):
    policy = json.loads((CHALICE_DIR / f"policy-{package.stage}.json").read_text())
    roles = package.of_type("AWS::IAM::Role")
    assert set(roles) == {f"{logical}Role" for logical in
                          ("Runner", "Tick", "ApiHandler", "WebsocketConnect",
                           "WebsocketMessage", "WebsocketDisconnect")}
    for name, role in roles.items():
        (inline,) = role["Properties"]["Policies"]
        assert inline["PolicyDocument"] == policy, name
        assert "ManagedPolicyArns" not in role["Properties"], name


def test_policy_names_every_table_and_index(package, monkeypatch):
    by_name = _model_tables(package.stage, monkeypatch)
    policy = json.loads((CHALICE_DIR / f"policy-{package.stage}.json").read_text())
    logical_of = {
        package.sub(r["Properties"]["TableName"]): logical
        for logical, r in package.of_type("AWS::DynamoDB::Table").items()
    }
    named = {json.dumps(r, sort_keys=True) for s in policy["Statement"] for r in _resources(s)}
    for name, model in by_name.items():
        assert json.dumps({"Fn::GetAtt": [logical_of[name], "Arn"]}, sort_keys=True) in named, name
        for gsi in model._get_schema()["global_secondary_indexes"]:
            index = {"Fn::Sub": "${%s.Arn}/index/%s" % (logical_of[name], gsi["index_name"])}
            assert json.dumps(index, sort_keys=True) in named, (name, gsi["index_name"])


def test_policy_grants_what_the_code_calls():
    """The policy lists actions by hand: a new kind of AWS call must come with its permission."""
    policy = json.loads((CHALICE_DIR / "policy-dev.json").read_text())
    actions = {a for s in policy["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
        "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
        "secretsmanager:GetSecretValue", "lambda:InvokeFunction", "execute-api:ManageConnections",
    } <= actions
    sources = "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))
    sources += (ROOT / "app.py").read_text()
    # Operations the policy does not grant; create_tables() (DescribeTable, CreateTable) runs
    # only against moto and the dev stack, never on AWS.
    for pattern, action in (
        (r"\.scan\(", "dynamodb:Scan"),
        (r"batch_write|BatchWrite", "dynamodb:BatchWriteItem"),
        (r"transact_get|TransactGet", "dynamodb:GetItem via TransactGetItems"),
    ):
        assert not re.search(pattern, sources), f"the code now needs {action}: add it to the policies"
    services = set(re.findall(r"""client\(\s*["']([a-z0-9-]+)["']""", sources))
    assert services <= {"kms", "lambda", "secretsmanager", "apigatewaymanagementapi"}, services


def test_kms_key_rotates_and_only_its_users_may_use_it(package):
    (key_id, key), = package.of_type("AWS::KMS::Key").items()
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    (alias,) = package.of_type("AWS::KMS::Alias").values()
    assert package.sub(alias["Properties"]["AliasName"]) == f"alias/benchmark-scheduler-{package.stage}"
    assert alias["Properties"]["TargetKeyId"] == {"Ref": key_id}
    statements = {s["Sid"]: s for s in props["KeyPolicy"]["Statement"]}
    root = statements.pop("AccountRootAdministersTheKey")
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    # In a key policy `Resource: "*"` means this key (AWS requires exactly that).
    grants = {
        s["Principal"]["AWS"]["Fn::GetAtt"][0]: (s["Action"], s["Resource"], s["Condition"])
        for s in statements.values()
    }
    context_keys = sorted(keys._context("user", "provider"))
    condition = {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["user_id", "provider_key"]},
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    assert sorted(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == context_keys
    # The API stores keys, the runner reads them; no other function touches the key.
    assert grants == {
        "ApiHandlerRole": ("kms:Encrypt", "*", condition),
        "RunnerRole": ("kms:Decrypt", "*", condition),
    }


# --- the bundle ------------------------------------------------------------------------------


def test_bundle_is_small_and_holds_only_the_app_and_its_dependencies(package):
    assert "import app: ok" in package.log  # scripts/package.py imported the stripped bundle
    size = package.bundle.stat().st_size
    assert size < packaging.BUDGET_BYTES == 15_000_000, f"{size / 1e6:.2f} MB"
    with zipfile.ZipFile(package.bundle) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"app.py", "chalicelib", "chalice", "pynamodb", "pydantic", "httpx", "jwt"} <= tops
    assert not tops & {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"}
    assert not any(packaging.is_runtime_provided(name) for name in names)
    assert not tops & {"devstack", "tests", "scripts", "bench", "ui", ".chalice"}, tops
    assert "chalicelib/ui/index.html" in names


def test_runtime_provided_entries():
    provided = packaging.is_runtime_provided
    for name in (
        "botocore/", "botocore/data/dynamodb/2012-08-10/service-2.json.gz", "boto3/session.py",
        "six.py", "dateutil/tz/tz.py", "python_dateutil-2.9.0.post0.dist-info/METADATA",
        "jmespath-1.1.0.data/scripts/jp.py", "urllib3-2.8.0.dist-info/RECORD",
        "chalicelib/__pycache__/app.cpython-311.pyc",
    ):
        assert provided(name), name
    for name in ("app.py", "chalicelib/tables.py", "pynamodb/models.py", "sixpack/x.py",
                 "botocore_stub.py", "httpx/_client.py", "pydantic_core/_pydantic_core.so"):
        assert not provided(name), name


# --- config ----------------------------------------------------------------------------------


def test_local_and_test_stages_stay_minimal():
    stages = json.loads((CHALICE_DIR / "config.json").read_text())["stages"]
    for stage in ("local", "test"):
        assert stages[stage] == {"api_gateway_stage": "api", "environment_variables": {"STAGE": stage}}
    for stage in DEPLOYED_STAGES:
        assert stages[stage]["autogen_policy"] is False
        assert stages[stage]["iam_policy_file"] == f"policy-{stage}.json"
