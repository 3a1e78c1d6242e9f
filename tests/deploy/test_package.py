"""`make package`: the SAM template and the bundle that `make deploy` ships (DESIGN §7, §7a).

Checked against the app itself: the PynamoDB models (the one source of truth for tables),
the functions in `.chalice/config.json`, the settings the code reads, and the README. Which
AWS calls each function's policy allows is proved by running them: `test_iam.py`.
"""
from __future__ import annotations

import json
import re
import zipfile
from datetime import date
from importlib import resources

import pytest

from chalicelib import config, metrics, tables
from scripts import access, bundle, merge_template
from tests.deploy.conftest import DEPLOYED_STAGES, ROOT

CHALICE_DIR = ROOT / ".chalice"

# Chalice function name → (logical id, handler in app.py).
FUNCTIONS = {
    "api_handler": ("APIHandler", "app.app"),
    "tick": ("Tick", "app.tick"),
    "runner": ("Runner", "app.runner"),
    "websocket_connect": ("WebsocketConnect", "app.ws_connect"),
    "websocket_disconnect": ("WebsocketDisconnect", "app.ws_disconnect"),
    "websocket_message": ("WebsocketMessage", "app.ws_message"),
}


def _models(stage: str, monkeypatch) -> dict[str, type]:
    """The models by table name, as the app names its tables in `stage`."""
    monkeypatch.setenv("STAGE", stage)
    for variable in config.TABLE_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    return {model.Meta.table_name: model for model in tables.ALL_MODELS}


def _tables(package) -> dict[str, tuple[str, dict]]:
    """The template's tables by their deployed name: (logical id, properties)."""
    return {
        package.sub(r["Properties"]["TableName"]): (logical, r["Properties"])
        for logical, r in package.of_type("AWS::DynamoDB::Table").items()
    }


# --- the template as a whole ---------------------------------------------------------------


def test_cfn_lint_finds_neither_errors_nor_warnings(package):
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(package.outdir / "sam.json", ManualArgs(regions=["us-east-1"]))
    assert not matches, "\n".join(str(m) for m in matches)


def test_stage_parameter_is_pinned_to_the_packaged_stage(package):
    parameter = package.template["Parameters"]["Stage"]
    assert parameter["AllowedValues"] == [package.stage]
    assert parameter["Default"] == package.stage


def test_hand_written_partial_resources_extend_ones_chalice_generates(package):
    """A resource of `.chalice/resources.json` without a `Type` must be one Chalice makes:
    otherwise a renamed logical id would leave a half resource behind."""
    merge = json.loads((CHALICE_DIR / "resources.json").read_text())
    partial = {name for name, r in merge["Resources"].items() if "Type" not in r}
    assert partial
    for name in partial:
        assert "Type" in package.resources[name], f"{name} is not a resource Chalice generates"


def test_every_parameter_is_documented_in_the_readme(package):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying to AWS"):]
    section = section[: section.index("\n## ", 1)]
    for name in package.template["Parameters"]:
        assert f"`{name}`" in section, f"parameter {name} is missing from the README's deploy section"


# --- functions: runtime, names, concurrency, retries -----------------------------------------


def _supported_today(runtime: str) -> bool:
    """Per cfn-lint's copy of AWS's Lambda runtime lifecycle: known and not yet deprecated."""
    path = resources.files("cfnlint.data.AdditionalSpecs").joinpath("LmbdRuntimeLifecycle.json")
    lifecycle = json.loads(path.read_text())
    return runtime in lifecycle and date.fromisoformat(lifecycle[runtime]["deprecated"]) > date.today()


def test_the_runtime_check_knows_a_deprecated_runtime():
    assert _supported_today("python3.13")
    assert not _supported_today("python3.9") and not _supported_today("python3.6") and not _supported_today("py")


def test_functions_are_the_apps_on_python313_arm64_with_their_names_and_limits(package):
    functions = package.of_type("AWS::Serverless::Function")
    assert set(functions) == {logical for logical, _ in FUNCTIONS.values()}
    assert set(merge_template.functions()) == set(FUNCTIONS)
    for name, (logical, handler) in FUNCTIONS.items():
        props = package.props(logical)
        assert props["Handler"] == handler
        assert props["Runtime"] == "python3.13" and _supported_today(props["Runtime"])
        assert props["Architectures"] == ["arm64"]
        assert package.sub(props["FunctionName"]) == f"benchmark-scheduler-{package.stage}-{name}"
        assert props["CodeUri"] == "./deployment.zip"
        assert props["LoggingConfig"] == {
            "LogFormat": "JSON", "ApplicationLogLevel": {"Ref": "LogLevel"}, "SystemLogLevel": "WARN",
        }
    runner, tick, api = package.props("Runner"), package.props("Tick"), package.props("APIHandler")
    assert runner["Timeout"] == 900 and runner["MemorySize"] >= 1024
    assert tick["Timeout"] == 60
    assert api["Timeout"] <= 30  # API Gateway gives up on a REST integration after 29 s
    assert package.template["Parameters"]["LogLevel"]["Default"] == "INFO"


def test_runners_cannot_starve_the_other_functions(package):
    """Reserved concurrency caps the runner (and the tick) and leaves the rest of the
    account's concurrency to the API, `$connect` and the other handlers."""
    parameters = package.template["Parameters"]
    assert package.props("Runner")["ReservedConcurrentExecutions"] == {"Ref": "RunnerReservedConcurrency"}
    assert package.props("Tick")["ReservedConcurrentExecutions"] == {"Ref": "TickReservedConcurrency"}
    assert parameters["RunnerReservedConcurrency"]["Default"] == 200
    assert 1 <= parameters["TickReservedConcurrency"]["Default"] <= 2
    for logical in ("APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect"):
        assert "ReservedConcurrentExecutions" not in package.props(logical), logical


def test_tick_runs_every_minute_by_a_named_rule_retried_within_that_minute(package):
    events = package.props("Tick")["Events"]
    schedules = [e for e in events.values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    props = schedules[0]["Properties"]
    assert props["Schedule"] == "rate(1 minute)"
    assert package.sub(props["Name"]) == f"benchmark-scheduler-{package.stage}-tick"
    assert props["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60}
    others = {n: package.props(n).get("Events") for n in package.of_type("AWS::Serverless::Function") if n != "Tick"}
    assert not any(others.values()), others


def test_runner_events_ride_out_an_hour_of_throttling_and_what_is_dropped_is_kept(package):
    configs = {
        package.props(name)["FunctionName"]["Ref"]: package.props(name)
        for name in package.of_type("AWS::Lambda::EventInvokeConfig")
    }
    assert set(configs) == {"Runner", "Tick"}
    runner, tick = configs["Runner"], configs["Tick"]
    assert runner["Qualifier"] == tick["Qualifier"] == "$LATEST"
    # One retry: a runner failing before it took the job gets a second chance; after a crash
    # mid-run the job is `running` and a retry is a no-op (the reaper interrupts it).
    assert runner["MaximumRetryAttempts"] == 1
    assert runner["MaximumEventAgeInSeconds"] == 3600
    queue = runner["DestinationConfig"]["OnFailure"]["Destination"]
    assert queue == {"Fn::GetAtt": ["RunnerFailureQueue", "Arn"]}
    assert package.props("RunnerFailureQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600
    # The next tick is the tick's retry.
    assert tick["MaximumRetryAttempts"] == 0 and tick["MaximumEventAgeInSeconds"] == 60


# --- APIs and outputs ------------------------------------------------------------------------


def test_rest_api_is_one_named_stage_throttled_and_stricter_on_auth(package):
    api = package.props("RestAPI")
    assert package.resources["RestAPI"]["Type"] == "AWS::Serverless::Api"
    assert api["StageName"] == "api"
    assert api["OpenApiVersion"]  # set: SAM then creates no extra `Stage` stage
    assert package.sub(api["Name"]) == f"benchmark-scheduler-{package.stage}"  # the 5XX alarm's ApiName
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in api["MethodSettings"]}
    parameters = package.template["Parameters"]
    default = settings[("/*", "*")]
    assert default["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert default["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    import app

    auth_routes = {p for p in app.app.routes if p.startswith("/api/auth/")}
    assert auth_routes
    for path in auth_routes:
        encoded = path.replace("/", "~1")
        strict = settings[("/" + encoded, "POST")]
        assert strict["ThrottlingRateLimit"] == {"Ref": "AuthThrottlingRateLimit"}
        assert strict["ThrottlingBurstLimit"] == {"Ref": "AuthThrottlingBurstLimit"}
    assert parameters["AuthThrottlingRateLimit"]["Default"] < parameters["ApiThrottlingRateLimit"]["Default"]
    assert parameters["AuthThrottlingBurstLimit"]["Default"] < parameters["ApiThrottlingBurstLimit"]["Default"]


def test_websocket_api_is_stage_api_with_the_three_routes_throttled(package):
    ws = package.props("WebsocketAPI")
    assert package.resources["WebsocketAPI"]["Type"] == "AWS::ApiGatewayV2::Api"
    assert ws["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"] for r in package.of_type("AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$default", "$disconnect"}
    stage = package.props("WebsocketAPIStage")
    assert stage["StageName"] == access.WS_STAGE
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}


def test_outputs_name_the_urls_and_the_tables(package):
    outputs = package.template["Outputs"]
    assert outputs["RestApiUrl"]["Value"] == {
        "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/"
    }
    ws_url = {"Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"}
    assert outputs["WebsocketUrl"]["Value"] == ws_url
    table_refs = {o["Value"].get("Ref") for o in outputs.values() if isinstance(o["Value"], dict)}
    assert set(package.of_type("AWS::DynamoDB::Table")) <= table_refs
    assert package.props("APIHandler")["Environment"]["Variables"]["WS_URL"] == ws_url  # the UI's config.js


# --- tables, generated from the models ------------------------------------------------------


def _keys(schema: list[dict]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema}


def _projection(projection: dict) -> tuple[str, tuple[str, ...]]:
    return projection["ProjectionType"], tuple(sorted(projection.get("NonKeyAttributes", [])))


def test_tables_are_the_pynamodb_models(package, monkeypatch):
    by_name = _models(package.stage, monkeypatch)
    template_tables = _tables(package)
    assert set(template_tables) == set(by_name)
    for name, model in by_name.items():
        (_, props), schema = template_tables[name], model._get_schema()
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props.get("ProvisionedThroughput") is None, name
        assert _keys(props["KeySchema"]) == _keys(schema["key_schema"]), name
        assert props["KeySchema"][0]["KeyType"] == "HASH", f"{name}: HASH must come first"
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
        assert "LocalSecondaryIndexes" not in props, name


def test_ttl_comes_from_each_models_ttl_attribute(package, monkeypatch):
    from pynamodb.attributes import TTLAttribute

    by_name = _models(package.stage, monkeypatch)
    for name, (_, props) in _tables(package).items():
        ttl = [a.attr_name for a in by_name[name].get_attributes().values() if isinstance(a, TTLAttribute)]
        if ttl:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl[0], "Enabled": True}, name
        else:
            assert "TimeToLiveSpecification" not in props, name
    connections = by_name[f"benchmark-scheduler-{package.stage}-connections"]
    assert "TimeToLiveSpecification" in _tables(package)[connections.Meta.table_name][1]


def test_tables_of_user_data_have_point_in_time_recovery(package):
    for name, (_, props) in _tables(package).items():
        table = name.removeprefix(f"benchmark-scheduler-{package.stage}-")
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
        assert pitr == (table not in merge_template.NO_PITR), name
    assert merge_template.NO_PITR <= {"connections", "slots"}  # never users, keys, schedules, runs...


def test_prod_keeps_tables_key_and_secret_dev_does_not(package):
    keep = package.stage == "prod"
    kept = [*package.of_type("AWS::DynamoDB::Table").items(), *package.of_type("AWS::KMS::Key").items(),
            *package.of_type("AWS::SecretsManager::Secret").items()]
    assert len(kept) == len(tables.ALL_MODELS) + 2
    for logical, resource in kept:
        expected = "Retain" if keep else "Delete"
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == expected, logical
    for logical, resource in package.of_type("AWS::DynamoDB::Table").items():
        assert resource["Properties"]["DeletionProtectionEnabled"] is keep, logical


# --- env wiring ------------------------------------------------------------------------------


def test_every_function_finds_tables_key_secret_runner_and_settings_by_ref(package, monkeypatch):
    by_name = _models(package.stage, monkeypatch)
    logical_of = {name: logical for name, (logical, _) in _tables(package).items()}
    (key_id,) = package.of_type("AWS::KMS::Key")
    (secret_id,) = package.of_type("AWS::SecretsManager::Secret")
    for logical in package.of_type("AWS::Serverless::Function"):
        variables = package.props(logical)["Environment"]["Variables"]
        for table, variable in config.TABLE_ENV.items():
            name = config.table_name(table)  # what the model reads without the variable
            assert name in by_name and variables[variable] == {"Ref": logical_of[name]}, (logical, variable)
        assert variables["KMS_KEY_ID"] == {"Ref": key_id}, logical
        assert variables["JWT_SECRET_ARN"] == {"Ref": secret_id}, logical
        assert variables["STAGE"] == package.stage, logical
        # By name: a Ref to the runner from the runner would be a circular dependency.
        assert variables["RUNNER_FUNCTION_NAME"] == package.props("Runner")["FunctionName"], logical
        assert variables["ADMIN_EMAILS"] == {"Ref": "AdminEmails"}, logical
        assert variables["LOG_LEVEL"] == {"Ref": "LogLevel"}, logical
        assert package.sub(variables["METRICS_NAMESPACE"]) == f"benchmark-scheduler-{package.stage}"
        assert "JWT_SECRET" not in variables and "ALLOW_PRIVATE_ENDPOINTS" not in variables


def test_jwt_secret_is_generated(package):
    (secret,) = package.of_type("AWS::SecretsManager::Secret").values()
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 64 and generate["ExcludePunctuation"] is True
    assert "SecretString" not in secret["Properties"]


# --- IAM and the KMS key ---------------------------------------------------------------------

# The only `*` the policies hold, each because AWS names things we cannot know in advance:
# log streams (Lambda names them per container) and WebSocket connection ids.
STAR_EXCEPTIONS = (
    re.compile(r"^arn:\$\{AWS::Partition\}:logs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
               r"log-group:/aws/lambda/benchmark-scheduler-\$\{Stage\}-[a-z_]+:\*$"),
    re.compile(r"^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
               r"\$\{WebsocketAPI\}/api/(GET|POST|DELETE)/@connections/\*$"),
)


def _listed(value):
    return value if isinstance(value, list) else [value]


def test_every_function_has_its_own_role_with_one_inline_policy(package):
    roles = package.of_type("AWS::IAM::Role")
    functions = package.of_type("AWS::Serverless::Function")
    role_of = {logical: package.props(logical)["Role"]["Fn::GetAtt"][0] for logical in functions}
    assert len(set(role_of.values())) == len(functions) and set(role_of.values()) == set(roles)
    for role in roles.values():
        (inline,) = role["Properties"]["Policies"]
        assert "ManagedPolicyArns" not in role["Properties"]
        assert inline["PolicyDocument"]["Statement"]


def test_policies_have_no_star_but_the_documented_ones(package):
    for logical in package.of_type("AWS::Serverless::Function"):
        for statement in package.role_policy(logical)["Statement"]:
            assert statement["Effect"] == "Allow"
            assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
            assert all("*" not in action for action in _listed(statement["Action"])), statement
            for resource in _listed(statement["Resource"]):
                (function, value), = resource.items()
                if function in ("Ref", "Fn::GetAtt"):
                    continue
                assert function == "Fn::Sub", resource
                if "*" in value:
                    assert any(p.match(value) for p in STAR_EXCEPTIONS), f"undocumented wildcard: {value}"
                if value.startswith("arn:"):
                    assert value.startswith("arn:${AWS::Partition}:"), value


def test_only_the_api_encrypts_and_only_the_runner_decrypts_stored_keys(package):
    """The vault's keys (context user_id, provider_key, endpoint: what `chalicelib.keys`
    seals them under) are sealed by the API and opened by the runner only; webhook secrets
    (user_id, alert_id) are sealed by the API and opened by the API (a test delivery) and
    the runner (every delivery)."""
    from chalicelib import alerts, keys

    uses: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for name, (logical, _) in FUNCTIONS.items():
        for statement in package.role_policy(logical)["Statement"]:
            for action in _listed(statement["Action"]):
                if action.startswith("kms:"):
                    context = tuple(statement["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"])
                    uses.setdefault((action, context), set()).add(name)
    vault, secrets = keys.CONTEXT_KEYS, alerts.SECRET_CONTEXT_KEYS
    assert uses == {
        ("kms:Encrypt", vault): {"api_handler"},
        ("kms:Decrypt", vault): {"runner"},
        ("kms:Encrypt", secrets): {"api_handler"},
        ("kms:Decrypt", secrets): {"api_handler", "runner"},
    }


def test_kms_key_rotates_and_its_policy_delegates_use_to_iam(package):
    (key_id, key), = package.of_type("AWS::KMS::Key").items()
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    (alias,) = package.of_type("AWS::KMS::Alias").values()
    assert package.sub(alias["Properties"]["AliasName"]) == f"alias/benchmark-scheduler-{package.stage}"
    assert alias["Properties"]["TargetKeyId"] == {"Ref": key_id}
    (root,) = props["KeyPolicy"]["Statement"]
    assert root["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


# --- alarms and metrics ----------------------------------------------------------------------


def _alarms(package) -> dict[str, dict]:
    return {logical: r["Properties"] for logical, r in package.of_type("AWS::CloudWatch::Alarm").items()}


def _metric_names(alarm: dict) -> set[tuple[str, str]]:
    if "MetricName" in alarm:
        return {(json.dumps(alarm["Namespace"]), alarm["MetricName"])}
    return {(json.dumps(m["MetricStat"]["Metric"]["Namespace"]), m["MetricStat"]["Metric"]["MetricName"])
            for m in alarm["Metrics"] if "MetricStat" in m}


def test_alarms_watch_what_the_runbook_covers_and_notify_the_topic(package):
    alarms = _alarms(package)
    watched = set().union(*(_metric_names(a) for a in alarms.values()))
    namespace = json.dumps({"Fn::Sub": "benchmark-scheduler-${Stage}"})
    for expected in (
        ('"AWS/Lambda"', "Errors"),  # runner errors
        ('"AWS/Lambda"', "AsyncEventsDropped"),
        ('"AWS/Lambda"', "ConcurrentExecutions"),  # runner near its reservation
        ('"AWS/ApiGateway"', "5XXError"),
        ('"AWS/DynamoDB"', "WriteThrottleEvents"),
        ('"AWS/DynamoDB"', "ReadThrottleEvents"),
        ('"AWS/SQS"', "ApproximateNumberOfMessagesVisible"),
        (namespace, metrics.TICK_RUNS),  # no tick for five minutes
    ):
        assert expected in watched, expected
    for logical, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical
    throttle_alarmed = {a["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
                        for a in alarms.values() if "Metrics" in a and "DynamoDB" in json.dumps(a)}
    assert throttle_alarmed == set(package.of_type("AWS::DynamoDB::Table"))
    no_tick = alarms["NoTickAlarm"]
    assert no_tick["Period"] * no_tick["EvaluationPeriods"] == 300 and no_tick["TreatMissingData"] == "breaching"
    assert package.props("Tick")["Environment"]["Variables"]["METRICS_NAMESPACE"] == json.loads(namespace)


def test_alarm_email_is_optional(package):
    (subscription_id, subscription), = package.of_type("AWS::SNS::Subscription").items()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert package.template["Parameters"]["AlarmEmail"]["Default"] == ""


# --- the bundle ------------------------------------------------------------------------------


def test_bundle_is_small_and_holds_only_the_app_and_its_dependencies(package):
    assert "import app: ok under Python 3.13" in package.log  # scripts/package.py imported it
    size = package.bundle.stat().st_size
    assert size < bundle.BUDGET_BYTES == 15_000_000, f"{size / 1e6:.2f} MB"
    with zipfile.ZipFile(package.bundle) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"app.py", "chalicelib", "chalice", "pynamodb", "pydantic", "pydantic_core", "httpx", "jwt"} <= tops
    assert not tops & {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py", "bin"}
    assert not any(bundle.is_left_out(name) for name in names)
    assert not tops & {"devstack", "tests", "scripts", "bench", "ui", ".chalice"}, tops
    assert "chalicelib/ui/index.html" in names


def test_every_compiled_file_is_built_for_cpython313_on_aarch64(dev_package):
    with zipfile.ZipFile(dev_package.bundle) as archive:
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
    assert any(re.search(r"pydantic_core/_pydantic_core\.cpython-313-aarch64-linux-gnu\.so$", n) for n in extensions)
    assert bundle.foreign_compiled_files(dev_package.bundle) == []


def test_a_compiled_file_for_another_platform_is_found(tmp_path):
    """The check above can fail: an x86_64 extension, a cp311 one and a foreign wheel tag."""
    elf_x86 = b"\x7fELF" + bytes(14) + (0x3E).to_bytes(2, "little") + bytes(44)
    elf_arm = b"\x7fELF" + bytes(14) + (0xB7).to_bytes(2, "little") + bytes(44)
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/_x.cpython-313-aarch64-linux-gnu.so", elf_x86)
        archive.writestr("b/_y.cpython-311-aarch64-linux-gnu.so", elf_arm)
        archive.writestr("c/_z.cpython-313-aarch64-linux-gnu.so", elf_arm)
        archive.writestr("c-1.0.dist-info/WHEEL", "Root-Is-Purelib: false\nTag: cp313-cp313-manylinux_2_17_x86_64\n")
        archive.writestr("d-1.0.dist-info/WHEEL", "Root-Is-Purelib: true\nTag: py3-none-any\n")
    problems = bundle.foreign_compiled_files(path)
    assert len(problems) == 3 and all(p.startswith(("a/", "b/", "c-1.0")) for p in problems), problems


def test_left_out_entries():
    left_out = bundle.is_left_out
    for name in (
        "botocore/", "botocore/data/dynamodb/2012-08-10/service-2.json.gz", "boto3/session.py",
        "six.py", "dateutil/tz/tz.py", "python_dateutil-2.9.0.post0.dist-info/METADATA",
        "jmespath-1.1.0.data/scripts/jp.py", "urllib3-2.8.0.dist-info/RECORD",
        "chalicelib/__pycache__/app.cpython-311.pyc", "bin/httpx",
    ):
        assert left_out(name), name
    for name in ("app.py", "chalicelib/tables.py", "pynamodb/models.py", "sixpack/x.py",
                 "botocore_stub.py", "httpx/_client.py", "pydantic_core/_pydantic_core.so"):
        assert not left_out(name), name


# --- config ----------------------------------------------------------------------------------


def test_local_and_test_stages_stay_minimal():
    stages = json.loads((CHALICE_DIR / "config.json").read_text())["stages"]
    for stage in ("local", "test"):
        assert stages[stage] == {"api_gateway_stage": "api", "environment_variables": {"STAGE": stage}}
    for stage in DEPLOYED_STAGES:
        assert stages[stage]["autogen_policy"] is False
        assert stages[stage]["lambda_architecture"] == merge_template.ARCHITECTURE


def test_packaging_refuses_a_stage_it_cannot_deploy():
    with pytest.raises(SystemExit, match="not deployable"):
        merge_template.merge_template("local")
